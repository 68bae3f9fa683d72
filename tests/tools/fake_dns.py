#!/usr/bin/env python3
"""fake_dns.py — a scriptable fake upstream DNS server for tests (stdlib only).

Usage:
  fake_dns.py --listen ADDR:PORT [--listen [V6]:PORT ...] --zone ZONE.json
              [--log QUERIES.log] [--ready READY_FILE]

Serves UDP and TCP (length-prefixed, several queries per connection) on every
--listen address. Writes READY_FILE (containing "ready") once all sockets are
bound, so tests can poll for it instead of sleeping. Every received query is
appended to QUERIES.log as one line:  "<udp|tcp> <qname as received> <qtype number>".
SIGTERM/SIGINT stop it. The zone file is re-read when it changes (mtime), so a
test can change answers while the server runs.

Zone file (JSON):
  {
    "names": {
      "www.example.test": {
        "ttl": 300,                       # default 300, applies to this name's records
        "A": ["198.51.100.1", "198.51.100.2"],
        "AAAA": ["2001:db8:aaaa::1"],
        "CNAME": "target.example.test",   # chain followed inside the zone (<= 8 hops)
        "rotate": true,                   # one A / one AAAA per answer, round robin
        "tc": true,                       # over UDP: empty answer with TC=1 (TCP answers fully)
        "drop": true,                     # never answer (timeouts)
        "delay": 0.6,                     # answer after this many seconds (a slow upstream)
        "rcode": 2,                       # answer with this rcode and no records
        "extra": [["evil.test", "A", "203.0.113.66", 300]],   # appended to the answer
                                          # section: records off the CNAME chain
        "HTTPS": [{"priority": 1, "target": ".", "ipv4hint": ["198.51.100.9"],
                   "ipv6hint": ["2001:db8:aaaa::9"], "ttl": 300}]
      }
    }
  }
Names are matched case-insensitively, without trailing dot. Unknown names get
NXDOMAIN. Owner names equal to the question are written as a compression
pointer to the question (as real servers do); others are written in full.
"""
import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import threading

TYPES = {"A": 1, "CNAME": 5, "AAAA": 28, "HTTPS": 65}


class Zone:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.names = {}
        self.lock = threading.Lock()
        self.counters = {}
        self.reload()

    def reload(self):
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if mtime == self.mtime:
            return
        with open(self.path) as f:
            data = json.load(f)
        self.names = {k.lower().rstrip("."): v for k, v in data.get("names", {}).items()}
        self.mtime = mtime

    def get(self, name):
        with self.lock:
            self.reload()
            return self.names.get(name.lower().rstrip("."))

    def next_index(self, key):
        with self.lock:
            n = self.counters.get(key, 0)
            self.counters[key] = n + 1
            return n


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def parse_query(data):
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qd != 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:
            return None
        labels.append(data[pos + 1:pos + 1 + n].decode("latin-1"))
        pos += 1 + n
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, data[12:pos + 4]


def rr(owner, qname, rtype, ttl, rdata):
    if owner.lower().rstrip(".") == qname.lower().rstrip("."):
        name = b"\xc0\x0c"
    else:
        name = encode_name(owner)
    return name + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def https_rdata(entry):
    params = b""
    if entry.get("ipv4hint"):
        v = b"".join(ipaddress.IPv4Address(a).packed for a in entry["ipv4hint"])
        params += struct.pack("!HH", 4, len(v)) + v
    if entry.get("ipv6hint"):
        v = b"".join(ipaddress.IPv6Address(a).packed for a in entry["ipv6hint"])
        params += struct.pack("!HH", 6, len(v)) + v
    return struct.pack("!H", entry.get("priority", 1)) + encode_name(entry.get("target", ".")) + params


def answer(zone, data, tcp):
    """Returns the response bytes, or None to stay silent."""
    q = parse_query(data)
    if q is None:
        return None
    qid, flags, qname, qtype, question = q
    rd = flags & 0x0100
    records, rcode, tc = [], 0, False
    name, hops = qname, 0
    first = zone.get(qname)
    if first is None:
        rcode = 3
    elif first.get("drop"):
        return None
    elif "rcode" in first:
        rcode = int(first["rcode"])
    elif first.get("tc") and not tcp:
        tc = True
    else:
        while hops < 8:
            entry = zone.get(name)
            if entry is None:
                break
            ttl = int(entry.get("ttl", 300))
            if "CNAME" in entry:
                records.append(rr(name, qname, 5, ttl, encode_name(entry["CNAME"])))
                name, hops = entry["CNAME"], hops + 1
                continue
            for tname, cls in (("A", ipaddress.IPv4Address), ("AAAA", ipaddress.IPv6Address)):
                if qtype != TYPES[tname] or tname not in entry:
                    continue
                addrs = entry[tname]
                if entry.get("rotate") and addrs:
                    addrs = [addrs[zone.next_index((name.lower(), tname)) % len(addrs)]]
                for a in addrs:
                    records.append(rr(name, qname, TYPES[tname], ttl, cls(a).packed))
            if qtype == 65:
                for h in entry.get("HTTPS", []):
                    records.append(rr(name, qname, 65, int(h.get("ttl", ttl)), https_rdata(h)))
            break
        for owner, tname, value, ttl in first.get("extra", []):
            cls = ipaddress.IPv4Address if tname == "A" else ipaddress.IPv6Address
            records.append(rr(owner, qname, TYPES[tname], int(ttl), cls(value).packed))
    rflags = 0x8000 | rd | 0x0080 | rcode | (0x0200 if tc else 0)
    header = struct.pack("!HHHHHH", qid, rflags, 1, len(records), 0, 0)
    return header + question + b"".join(records)


class Server:
    def __init__(self, zone, log_path):
        self.zone = zone
        self.log_lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1) if log_path else None

    def note(self, proto, data):
        if not self.log:
            return
        q = parse_query(data)
        line = f"{proto} {q[2]} {q[3]}\n" if q else f"{proto} <malformed> 0\n"
        with self.log_lock:
            self.log.write(line)

    def delay(self, data):
        q = parse_query(data)
        entry = self.zone.get(q[2]) if q else None
        return float(entry.get("delay", 0)) if entry else 0.0

    def serve_udp(self, sock):
        while True:
            data, peer = sock.recvfrom(65535)
            self.note("udp", data)
            resp = answer(self.zone, data, tcp=False)
            if resp is None:
                continue
            wait = self.delay(data)
            if wait > 0:  # the others are not held up behind a slow name
                threading.Timer(wait, sock.sendto, args=(resp, peer)).start()
            else:
                sock.sendto(resp, peer)

    def serve_tcp(self, listener):
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self.serve_conn, args=(conn,), daemon=True).start()

    def serve_conn(self, conn):
        with conn:
            conn.settimeout(30)
            try:
                while True:
                    head = self.read_exact(conn, 2)
                    if head is None:
                        return
                    data = self.read_exact(conn, struct.unpack("!H", head)[0])
                    if data is None:
                        return
                    self.note("tcp", data)
                    resp = answer(self.zone, data, tcp=True)
                    wait = self.delay(data)
                    if wait > 0:
                        threading.Event().wait(wait)
                    if resp is not None:
                        conn.sendall(struct.pack("!H", len(resp)) + resp)
            except OSError:
                return

    @staticmethod
    def read_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


def parse_listen(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, host, int(port)


def main():
    ap = argparse.ArgumentParser(description="fake upstream DNS server for tests")
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--log")
    ap.add_argument("--ready")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = Server(Zone(args.zone), args.log)
    threads = []
    for item in args.listen:
        family, host, port = parse_listen(item)
        u = socket.socket(family, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        u.bind((host, port))
        t = socket.socket(family, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((host, port))
        t.listen(128)
        threads.append(threading.Thread(target=server.serve_udp, args=(u,), daemon=True))
        threads.append(threading.Thread(target=server.serve_tcp, args=(t,), daemon=True))
    for th in threads:
        th.start()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
