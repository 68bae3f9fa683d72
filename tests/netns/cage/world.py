#!/usr/bin/env python3
"""The "world" of the cage tests: one process holding a fake authoritative DNS
server, an HTTP server and a TCP echo server, all on addresses the test gave
the world namespace.

usage: world.py --dns ADDR [--dns ADDR ...] --zone ZONE.json --query-log FILE
                --http-root DIR --ports-file FILE

ZONE.json: {"name.": {"A": ["192.0.2.80"], "AAAA": ["2001:db8::80"], "ttl": 60}}
Names absent from the zone get NXDOMAIN. DNS: UDP and TCP on port 53 of every
--dns address; one line per received query ("<name> <type>") is appended to
the query log, so a test can prove a query never left the cage. HTTP and echo
listen dual-stack on port 0 (chosen by the kernel); their ports are written to
--ports-file as "http=<port> echo=<port>" once everything listens.
"""
import argparse
import http.server
import ipaddress
import json
import socket
import socketserver
import struct
import threading

TYPES = {1: "A", 28: "AAAA"}


def parse_question(packet):
    labels, pos = [], 12
    while pos < len(packet):
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        labels.append(packet[pos:pos + length].decode("ascii", "replace").lower())
        pos += length
    qtype, _qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return ".".join(labels) + ".", qtype, pos + 4


def answer(packet, zone, log, lock):
    if len(packet) < 17:
        return None
    name, qtype, end = parse_question(packet)
    with lock:
        with open(log, "a") as f:
            f.write(f"{name} {TYPES.get(qtype, qtype)}\n")
    entry = zone.get(name)
    records = []
    rcode = 3 if entry is None else 0
    if entry is not None and qtype in TYPES:
        for text in entry.get(TYPES[qtype], []):
            data = ipaddress.ip_address(text).packed
            records.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, entry.get("ttl", 60), len(data)) + data)
    flags = 0x8400 | 0x0100 | rcode  # QR AA, RD copied, rcode
    header = packet[:2] + struct.pack("!HHHHH", flags, 1, len(records), 0, 0)
    return header + packet[12:end] + b"".join(records)


def serve_udp(sock, zone, log, lock):
    while True:
        data, peer = sock.recvfrom(4096)
        reply = answer(data, zone, log, lock)
        if reply:
            sock.sendto(reply, peer)


def serve_tcp(sock, zone, log, lock):
    while True:
        conn, _ = sock.accept()
        with conn:
            try:
                length = struct.unpack("!H", conn.recv(2))[0]
                data = b""
                while len(data) < length:
                    chunk = conn.recv(length - len(data))
                    if not chunk:
                        break
                    data += chunk
                reply = answer(data, zone, log, lock)
                if reply:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, struct.error):
                pass


class DualStackHTTP(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)


class DualStackEcho(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dns", action="append", required=True)
    parser.add_argument("--zone", required=True)
    parser.add_argument("--query-log", required=True)
    parser.add_argument("--http-root", required=True)
    parser.add_argument("--ports-file", required=True)
    args = parser.parse_args()
    with open(args.zone) as f:
        zone = {k.lower(): v for k, v in json.load(f).items()}
    lock = threading.Lock()
    open(args.query_log, "a").close()
    for address in args.dns:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((address, 53))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, 53))
        tcp.listen(16)
        for target, sock in ((serve_udp, udp), (serve_tcp, tcp)):
            threading.Thread(target=target, args=(sock, zone, args.query_log, lock), daemon=True).start()

    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=args.http_root, **kw)
    web = DualStackHTTP(("::", 0), handler)
    echo = DualStackEcho(("::", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    with open(args.ports_file + ".tmp", "w") as f:
        f.write(f"http={web.server_address[1]} echo={echo.server_address[1]}\n")
    import os
    os.rename(args.ports_file + ".tmp", args.ports_file)
    web.serve_forever()


if __name__ == "__main__":
    main()
