#!/usr/bin/env python3
"""Integration tests for dnsguard in a private network namespace.

  dnsguard_netns.py --dnsguard BIN --fake-dns tests/tools/fake_dns.py CASE

Re-executes itself under `unshare -n` (a fresh network namespace that
disappears with its last process), then builds inside it: lo up, a
veth pair holding the fake upstream's documentation address 192.0.2.53 and
routes for the "answer" ranges 198.51.100.0/24, 203.0.113.0/24 and
2001:db8:aaaa::/48 (no route out of the namespace), and table inet cagent
with sets allow4/allow6 plus an output chain that drops packets to the
answer ranges unless the destination is in the set.

That chain is how "in the set *before* the client got the answer" is
proven: right after an answer arrives the client sendto()s each address;
the kernel returns EPERM for a packet the output hook drops, so a successful
send means the address was already in the set at that instant.
Exit 0 pass, 1 fail, 77 skipped (printed as "skipped: <reason>").
"""
import argparse
import errno
import json
import queue
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
UPSTREAM = "192.0.2.53"
ANSWER_NETS4 = "198.51.100.0/24, 203.0.113.0/24"
ANSWER_NET6 = "2001:db8:aaaa::/48"

RULESET = f"""
table inet cagent {{
  set allow4 {{ type ipv4_addr; flags timeout; }}
  set allow6 {{ type ipv6_addr; flags timeout; }}
  chain out {{
    type filter hook output priority 0; policy accept;
    ip daddr {{ {ANSWER_NETS4} }} ip daddr != @allow4 drop
    ip6 daddr {ANSWER_NET6} ip6 daddr != @allow6 drop
  }}
}}
"""


NETWORK_READY = False


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def skip(reason):
    print(f"skipped: {reason}")
    sys.exit(SKIP)


def run(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw)


def poll(cond, deadline_s, what, interval=0.02):
    """Polls cond() until true; bounded in time and count."""
    end = time.monotonic() + deadline_s
    for _ in range(int(deadline_s / interval) + 2):
        if cond():
            return
        if time.monotonic() > end:
            break
        time.sleep(interval)  # polling interval, not synchronisation
    raise Failure(f"timed out after {deadline_s}s waiting for {what}")


# ---------------------------------------------------------------- DNS client

def build_query(name, qtype, edns=True, qid=None):
    qid = random.randrange(65536) if qid is None else qid
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return qid, q


def skip_name(msg, pos):
    while True:
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            return pos + 2
        if n == 0:
            return pos + 1
        pos += 1 + n


def parse_response(msg):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    pos = 12
    qname_end = skip_name(msg, pos)
    question = msg[12:qname_end + 4]
    pos = qname_end + 4
    answers = []
    for _ in range(an):
        pos = skip_name(msg, pos)
        rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        rdata = msg[pos + 10:pos + 10 + rdlen]
        pos += 10 + rdlen
        answers.append((rtype, ttl, rdata))
    addrs = []
    for rtype, ttl, rdata in answers:
        if rtype == 1:
            addrs.append((socket.inet_ntop(socket.AF_INET, rdata), ttl))
        elif rtype == 28:
            addrs.append((socket.inet_ntop(socket.AF_INET6, rdata), ttl))
    return {"id": qid, "rcode": flags & 0xF, "tc": bool(flags & 0x0200), "answers": answers,
            "addrs": addrs, "question": question, "ar": ar}


def query_udp(name, qtype=1, server=("127.0.0.1", 53), timeout=5.0, edns=True, sock=None):
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        qid, q = build_query(name, qtype, edns)
        sock.sendto(q, server)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            data, _ = sock.recvfrom(65535)
            r = parse_response(data)
            if r["id"] == qid:
                r["sent_question"] = q[12:12 + len(r["question"])]
                r["raw"] = data
                return r
        raise socket.timeout()
    finally:
        if own:
            sock.close()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise Failure("TCP connection closed early")
        buf += chunk
    return buf


def probe(addr):
    """True when the kernel lets a packet to addr out (i.e. addr is in the set)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"x", (addr, 9))
            return True
        except PermissionError:
            return False


# nft::set_grace: the kernel holds every address this much longer than the
# TTL handed to clients (the set must outlive every client's copy).
GRACE = 2


def set_elements(v6=False):
    out = run("nft", "-j", "list", "set", "inet", "cagent", "allow6" if v6 else "allow4").stdout
    elems = {}
    for item in json.loads(out)["nftables"]:
        if "set" not in item:
            continue
        for e in item["set"].get("elem", []):
            if isinstance(e, dict) and "elem" in e:
                elems[e["elem"]["val"]] = e["elem"].get("timeout")
            else:
                elems[e] = None
    return elems


# ---------------------------------------------------------------- fixture

class Cage:
    def __init__(self, args, zone, config_extra="", allow=None, upstreams=None, refresh=0, ttl=(30, 3600),
                 log_dir=None):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="dnsguard-netns-")
        self.zone_path = os.path.join(self.dir, "zone.json")
        self.qlog = os.path.join(self.dir, "queries.log")
        # dnsguard's log directory (its log, decisions.json, the journal).
        self.log_dir = log_dir or self.dir
        self.dglog = os.path.join(self.log_dir, "dnsguard.log")
        self.config = os.path.join(self.dir, "dnsguard.toml")
        self.procs = []
        self.write_zone(zone)
        allow = allow or ["www.example.test", "*.wild.example.test"]
        upstreams = upstreams or [f"{UPSTREAM}:53"]
        with open(self.config, "w") as f:
            f.write(f'listen = ["127.0.0.1:53", "[::1]:53"]\n'
                    f'upstreams = {json.dumps(upstreams)}\n'
                    f'allow = {json.dumps(allow)}\n'
                    f'{config_extra}\n'
                    f'[ttl]\nmin = {ttl[0]}\nmax = {ttl[1]}\n'
                    f'[refresh]\ninterval = {refresh}\n'
                    f'[nft]\ntable = "cagent"\nset4 = "allow4"\nset6 = "allow6"\n'
                    f'[log]\nfile = "{self.dglog}"\nlevel = "info"\n')

    def write_zone(self, zone):
        tmp = self.zone_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"names": zone}, f)
        os.replace(tmp, self.zone_path)

    def __enter__(self):
        global NETWORK_READY
        if not NETWORK_READY:
            # A veth pair whose both ends stay in this namespace: v0 holds the
            # upstream's address and the routes to the answer ranges.
            run("ip", "link", "set", "lo", "up")
            run("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
            run("ip", "link", "set", "v0", "up")
            run("ip", "link", "set", "v1", "up")
            run("ip", "addr", "add", f"{UPSTREAM}/24", "dev", "v0")
            run("ip", "-6", "addr", "add", "2001:db8::1/64", "dev", "v0", "nodad")
            for net in ("198.51.100.0/24", "203.0.113.0/24"):
                run("ip", "route", "add", net, "dev", "v0")
            run("ip", "-6", "route", "add", ANSWER_NET6, "dev", "v0")
            NETWORK_READY = True
        # A fresh table (empty sets) for every fixture.
        subprocess.run(["nft", "delete", "table", "inet", "cagent"], capture_output=True)
        run("nft", "-f", "-", input=RULESET)
        ready = os.path.join(self.dir, "fake.ready")
        self.fake = self.spawn([sys.executable, self.args.fake_dns, "--listen", f"{UPSTREAM}:53",
                                "--zone", self.zone_path, "--log", self.qlog, "--ready", ready])
        poll(lambda: os.path.exists(ready), 10, "fake upstream ready")
        return self

    def start_dnsguard(self, wait=True):
        self.dg = self.spawn([self.args.dnsguard, "--config", self.config])
        if wait:
            poll(lambda: "dnsguard ready" in self.log_text() or self.dg.poll() is not None, 10,
                 "dnsguard ready line")
            check(self.dg.poll() is None, f"dnsguard exited: {self.log_text()}")
        return self.dg

    def spawn(self, argv):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "a"))
        self.procs.append(p)
        return p

    def log_text(self):
        try:
            with open(self.dglog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stderr_text(self):
        try:
            with open(os.path.join(self.dir, "stderr"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def record(self):
        """decisions.json as it is on disk now; {} when absent or unreadable."""
        try:
            with open(os.path.join(self.log_dir, "decisions.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def journal_lines(self):
        try:
            with open(os.path.join(self.log_dir, "gate-bindings.journal")) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def upstream_queries(self):
        try:
            with open(self.qlog) as f:
                return [line.split() for line in f if line.strip()]
        except OSError:
            return []

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if exc[0] is not None:
            sys.stderr.write("--- dnsguard log ---\n" + self.log_text())
            try:
                sys.stderr.write("--- stderr ---\n" + open(os.path.join(self.dir, "stderr")).read())
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


ZONE = {
    "www.example.test": {"ttl": 300, "A": ["198.51.100.1", "198.51.100.2"], "AAAA": ["2001:db8:aaaa::1"]},
    "short.wild.example.test": {"ttl": 5, "A": ["198.51.100.3"]},
    "long.wild.example.test": {"ttl": 100000, "A": ["198.51.100.4"]},
    "private.wild.example.test": {"ttl": 300, "A": ["10.1.2.3", "169.254.169.254", "198.51.100.5"]},
    "evil.test": {"ttl": 300, "A": ["203.0.113.99"]},
    "alias.wild.example.test": {"ttl": 300, "CNAME": "hop.cdn.test",
                                "extra": [["evil.test", "A", "203.0.113.66", 300]]},
    "hop.cdn.test": {"ttl": 300, "CNAME": "edge.cdn.test"},
    "edge.cdn.test": {"ttl": 120, "A": ["203.0.113.10"]},
    "big.wild.example.test": {"ttl": 300, "tc": True, "A": ["198.51.100.20", "198.51.100.21"]},
    "dead.wild.example.test": {"drop": True},
    "svc.wild.example.test": {"ttl": 300, "HTTPS": [{"priority": 1, "target": ".",
                                                     "ipv4hint": ["198.51.100.30"],
                                                     "ipv6hint": ["2001:db8:aaaa::30"]}]},
}


# ---------------------------------------------------------------- cases

def case_allowed(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        check(not probe("198.51.100.1"), "probe works: 198.51.100.1 blocked before any lookup")
        r = query_udp("www.example.test", 1)
        ok = {a: probe(a) for a, _ in r["addrs"]}  # immediately, before anything else
        check(r["rcode"] == 0, f"rcode {r['rcode']}")
        check(sorted(a for a, _ in r["addrs"]) == ["198.51.100.1", "198.51.100.2"], f"addrs {r['addrs']}")
        check(all(ok.values()), f"address not in the set when the answer arrived: {ok}")
        elems = set_elements()
        check(elems.get("198.51.100.1") == 300 + GRACE and elems.get("198.51.100.2") == 300 + GRACE,
              f"set timeouts {elems}")
        check(all(ttl <= 300 for _, ttl in r["addrs"]), "TTL above set timeout")
        r6 = query_udp("www.example.test", 28, server=("::1", 53))
        check([a for a, _ in r6["addrs"]] == ["2001:db8:aaaa::1"] and probe("2001:db8:aaaa::1"),
              f"AAAA {r6['addrs']}")
        check(set_elements(v6=True).get("2001:db8:aaaa::1") == 300 + GRACE, "v6 set timeout")
        # TTL clamp: 5 s -> ttl.min 30 in the set; 100000 -> ttl.max 3600, client TTL <= 3600.
        r = query_udp("short.wild.example.test")
        check(probe("198.51.100.3") and set_elements().get("198.51.100.3") == 30 + GRACE, "ttl.min clamp")
        r = query_udp("long.wild.example.test")
        check(probe("198.51.100.4") and set_elements().get("198.51.100.4") == 3600 + GRACE, "ttl.max clamp")
        check(r["addrs"][0][1] <= 3600, f"client TTL {r['addrs'][0][1]} above ttl.max")
        # Special-purpose addresses stay out of the set; the public one goes in.
        r = query_udp("private.wild.example.test")
        elems = set_elements()
        check(r["rcode"] == 0 and "198.51.100.5" in elems, "public address inserted")
        check("10.1.2.3" not in elems and "169.254.169.254" not in elems, f"private inserted: {elems}")
        # Cache: a second query is served without asking the upstream again.
        before = len(cage.upstream_queries())
        r = query_udp("www.example.test", 1)
        check(r["rcode"] == 0 and len(r["addrs"]) == 2 and all(probe(a) for a, _ in r["addrs"]), "cache hit answer")
        check(len(cage.upstream_queries()) == before, "cache hit went upstream")
        # Counters on SIGUSR1.
        cage.dg.send_signal(signal.SIGUSR1)
        poll(lambda: "counters queries=" in cage.log_text(), 5, "counters line")
        check("cache_hits=1" in cage.log_text(), "cache_hits counter")


def allowed_control(cage, what):
    """The positive control of a denial cage: in the same cage (same policy,
    same upstream, same ruleset) an allowed name is answered with its
    addresses, they are in the set, and the upstream's log shows the query,
    so a denial there is dnsguard's decision, not a dead path."""
    before = len(cage.upstream_queries())
    r = query_udp("www.example.test")
    ok = {a: probe(a) for a, _ in r["addrs"]}
    check(r["rcode"] == 0 and sorted(ok) == ["198.51.100.1", "198.51.100.2"],
          f"{what}: control www.example.test: rcode {r['rcode']} addrs {r['addrs']}")
    check(all(ok.values()), f"{what}: control www.example.test's addresses not in the set: {ok}")
    asked = [q[1].lower() for q in cage.upstream_queries()[before:]]
    check("www.example.test" in asked, f"{what}: control www.example.test never reached the upstream: {asked}")


def case_denied(args):
    denied_names = ("evil.test", "wild.example.test", "example.test", "xwww.example.test",
                    "a.www.example.test")
    with Cage(args, ZONE, config_extra='deny_rcode = "nxdomain"') as cage:
        cage.start_dnsguard()
        check(not probe("198.51.100.1"), "probe works: 198.51.100.1 blocked before any lookup")
        allowed_control(cage, "deny_rcode nxdomain")
        for name in denied_names:
            r = query_udp(name)
            check(r["rcode"] == 3 and not r["addrs"], f"{name}: rcode {r['rcode']}")
        # A label with a byte outside [A-Za-z0-9_-] under an allowed wildcard is denied too.
        qid, q = build_query("x.wild.example.test", 1)
        bad = q.replace(b"\x01x", b"\x01=")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(bad, ("127.0.0.1", 53))
            r = parse_response(s.recv(4096))
        check(r["rcode"] == 3, f"bad label byte: rcode {r['rcode']}")
        # ANY and CHAOS are answered locally as well.
        check(query_udp("www.example.test", 255)["rcode"] == 4, "ANY -> NOTIMP")
        names = [q[1].lower() for q in cage.upstream_queries()]
        check(not any("evil" in n or n in denied_names or "=" in n for n in names),
              f"denied name reached the upstream: {names}")
        check(not probe("203.0.113.99"), "denied name's address reachable")
        check("denied name=evil.test type=1 client=127.0.0.1" in cage.log_text(), "deny log line")
        # An EDNS client learns why, and the fix (RFC 8914 EDE 15 "Blocked").
        _, q = build_query("Evil.test", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(q, ("127.0.0.1", 53))
            raw = s.recv(4096)
        text = b"blocked by cagent policy; to allow it, run on the host: cagent allow evil.test"
        check(raw.endswith(struct.pack("!HHH", 15, 2 + len(text), 15) + text), f"EDE in the answer: {raw!r}")
        # The decision record counts every denial exactly — also a burst of
        # distinct names far past what the rate-limited log line keeps.
        for i in range(300):
            query_udp(f"n{i}.flood.test")
        path = os.path.join(cage.dir, "decisions.json")

        def record():
            try:
                with open(path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {}
        poll(lambda: record().get("denied_total") == 307, 5, "decision record with all 307 denials")
        d = record()
        flood = [e for e in d["denied"] if e["name"].endswith(".flood.test")]
        check(len(flood) == 300 and all(e["count"] == 1 and e["type"] == 1 for e in flood), "300 flood entries")
        evil = [e for e in d["denied"] if e["name"] == "evil.test"]
        check(len(evil) == 1 and evil[0]["count"] == 2, f"evil.test counted case-folded: {evil}")
        check(cage.log_text().count(".flood.test") < 300, "the human log is the rate-limited one")
        names = [q[1].lower() for q in cage.upstream_queries()]
        check(not any(n.endswith("flood.test") for n in names), f"a flood name reached the upstream: {names}")
        check(names == ["www.example.test"], f"the upstream saw more than the control's query: {names}")
    with Cage(args, ZONE, config_extra='deny_rcode = "refused"') as cage:
        cage.start_dnsguard()
        allowed_control(cage, "deny_rcode refused")
        check(query_udp("evil.test")["rcode"] == 5, "deny_rcode refused")
        check(not probe("203.0.113.99"), "deny_rcode refused: the denied name's address stays out of the set")
        names = [q[1].lower() for q in cage.upstream_queries()]
        check(names == ["www.example.test"], f"deny_rcode refused: the upstream saw {names}")


def case_cname(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        r = query_udp("alias.wild.example.test")
        ok = {a: probe(a) for a, _ in r["addrs"]}
        check(r["rcode"] == 0, f"rcode {r['rcode']}")
        check(ok.get("203.0.113.10") is True, f"chain target not in set at answer time: {ok}")
        # The off-chain record is neither inserted nor passed on: a client
        # must never get an address it would be refused at.
        check("203.0.113.66" not in ok, f"off-chain record passed to the client: {r['addrs']}")
        check(not probe("203.0.113.66"), "off-chain record was inserted")
        elems = set_elements()
        check(elems.get("203.0.113.10") == 120 + GRACE and "203.0.113.66" not in elems, f"set {elems}")


def case_tcp(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        with socket.create_connection(("127.0.0.1", 53), timeout=5) as c:
            ids = []
            # Pipelined: three queries written before reading any answer.
            for name in ("www.example.test", "evil.test", "short.wild.example.test"):
                qid, q = build_query(name, 1)
                ids.append(qid)
                c.sendall(struct.pack("!H", len(q)) + q)
            got = {}
            for _ in ids:
                n = struct.unpack("!H", recv_exact(c, 2))[0]
                r = parse_response(recv_exact(c, n))
                got[r["id"]] = r
        check(sorted(got) == sorted(ids), "one answer per query on the connection")
        check(got[ids[0]]["rcode"] == 0 and len(got[ids[0]]["addrs"]) == 2, "allowed over TCP")
        check(got[ids[1]]["rcode"] == 3, "denied over TCP")
        check(all(probe(a) for a, _ in got[ids[2]]["addrs"]), "TCP answer addresses in set")


def case_truncation(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        r = query_udp("big.wild.example.test")
        check(r["rcode"] == 0 and not r["tc"], f"rcode {r['rcode']} tc {r['tc']}")
        check(sorted(a for a, _ in r["addrs"]) == ["198.51.100.20", "198.51.100.21"], f"addrs {r['addrs']}")
        check(all(probe(a) for a, _ in r["addrs"]), "addresses in set")
        protos = [q[0] for q in cage.upstream_queries() if q[1].lower() == "big.wild.example.test"]
        check(protos == ["udp", "tcp"], f"upstream saw {protos}, expected udp then tcp")


def case_upstream_down(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        t0 = time.monotonic()
        r = query_udp("dead.wild.example.test", timeout=8)
        took = time.monotonic() - t0
        check(r["rcode"] == 2, f"rcode {r['rcode']}")
        check(took < 3.0, f"SERVFAIL took {took:.2f}s (budget: 3 attempts x 750 ms)")
        check("timeout" in cage.log_text(), "upstream failure logged")
        asked = [q[1].lower() for q in cage.upstream_queries()]
        check("dead.wild.example.test" in asked, f"the dropped name never reached the upstream: {asked}")
        # Control, same cage: the upstream answers an allowed name, so the
        # SERVFAIL above is the dropped name's, not a dead upstream's.
        allowed_control(cage, "upstream dropping one name")
    # No upstream at all at that address (nothing listening on .54).
    with Cage(args, ZONE, upstreams=["192.0.2.54:53"]) as cage:
        cage.start_dnsguard()
        t0 = time.monotonic()
        r = query_udp("www.example.test", timeout=8)
        check(r["rcode"] == 2 and time.monotonic() - t0 < 3.0, "unreachable upstream -> SERVFAIL")
    # Failover: first upstream dead, second answers.
    with Cage(args, ZONE, upstreams=["192.0.2.54:53", f"{UPSTREAM}:53"]) as cage:
        cage.start_dnsguard()
        r = query_udp("www.example.test", timeout=8)
        check(r["rcode"] == 0 and len(r["addrs"]) == 2, f"failover: rcode {r['rcode']}")


def case_live_policy(args):
    """allow/deny at run time through the control socket, against the real
    dnsguard and sets; only root can use the socket."""
    zone = dict(ZONE)
    zone["twin.test"] = {"ttl": 300, "A": ["203.0.113.99"]}  # shares evil.test's address
    zone["solo.test"] = {"ttl": 300, "A": ["203.0.113.77"]}
    # Two run-time names sharing one address (.81); pair-a.test also has
    # one of its own (.80) and one shared with the policy's twin.test (.99).
    zone["pair-a.test"] = {"ttl": 300, "A": ["203.0.113.80", "203.0.113.81", "203.0.113.99"]}
    zone["pair-b.test"] = {"ttl": 300, "A": ["203.0.113.81"]}
    with Cage(args, zone, allow=["www.example.test", "twin.test"]) as cage:
        cage.start_dnsguard()
        sock = os.path.join(cage.dir, "control", "dnsguard.sock")
        st = os.lstat(os.path.dirname(sock))
        check(st.st_mode & 0o777 == 0o700 and st.st_uid == os.geteuid(), f"control dir mode {oct(st.st_mode)}")

        def control(*words, uid=None):
            argv = [args.dnsguard, "--control", sock, *words]
            if uid is not None:
                argv = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups", *argv]
            return subprocess.run(argv, capture_output=True, text=True, timeout=10)

        # dnsguard --control prints the control protocol's reply: one JSON
        # line (dnsguard/contracts.hpp), which the host reads as it is.
        def reply(r):
            try:
                d = json.loads(r.stdout)
            except ValueError:
                return {}
            check(r.stdout.count("\n") == 1 and d.get("version") == 1, f"one reply line, version 1: {r.stdout!r}")
            return d

        check(query_udp("evil.test")["rcode"] == 3, "evil.test denied at start")
        check([x for x, _ in query_udp("twin.test")["addrs"]] == ["203.0.113.99"], "twin.test allowed")
        # Another uid (the agent's situation: no capabilities) cannot reach
        # the socket, even with every directory above it open.
        os.chmod(cage.dir, 0o755)
        r = control("allow", "solo.test", uid=65534)
        check(r.returncode == 1 and "Permission denied" in r.stderr, f"other uid: {r.returncode} {r.stderr}")
        # Even if it could reach it, the server answers only uid 0.
        os.chmod(os.path.dirname(sock), 0o755)
        os.chmod(sock, 0o666)
        r = control("allow", "solo.test", uid=65534)
        check(r.returncode == 1 and r.stdout == "", f"peer check: {r.returncode} {r.stdout} {r.stderr}")
        os.chmod(os.path.dirname(sock), 0o700)
        check(query_udp("solo.test")["rcode"] == 3, "solo.test still denied")
        # Invalid patterns: one line, exit 2, nothing changed.
        r = control("allow", "solo.test", "bad..name")
        d = reply(r)
        check(r.returncode == 2 and d.get("ok") is False and d.get("error", "").startswith("invalid pattern bad..name")
              and d.get("names") == [], f"invalid: {r.stdout}")
        check(query_udp("solo.test")["rcode"] == 3, "nothing changed on error")
        # allow: the next lookup succeeds and the address is in the set.
        t0 = time.monotonic()
        r = control("allow", "solo.test", "evil.test")
        d = reply(r)
        check(r.returncode == 0 and d.get("ok") is True and d.get("op") == "allow"
              and d.get("names") == ["solo.test", "evil.test"] and d.get("added") == ["solo.test", "evil.test"],
              f"allow: {r.stdout}")
        ans = query_udp("solo.test")
        took = time.monotonic() - t0
        check(ans["rcode"] == 0 and [x for x, _ in ans["addrs"]] == ["203.0.113.77"], f"solo.test after allow: {ans}")
        print(f"allow -> first successful lookup: {took * 1000:.1f} ms")
        check(probe("203.0.113.77"), "solo.test's address in the set")
        check([x for x, _ in query_udp("evil.test")["addrs"]] == ["203.0.113.99"], "evil.test allowed at run time")
        check(reply(control("list")).get("names") == ["solo.test", "evil.test"], "list")
        # deny: the name is refused from the next lookup on; the address it
        # shares with a name the policy allows stays reachable.
        r = control("deny", "evil.test")
        d = reply(r)
        check(r.returncode == 0 and d.get("ok") is True and d.get("op") == "deny" and d.get("names") == ["evil.test"]
              and d.get("evicted") == 0, f"deny: {r.stdout}")
        check(query_udp("evil.test")["rcode"] == 3, "evil.test denied again")
        check([x for x, _ in query_udp("twin.test")["addrs"]] == ["203.0.113.99"], "twin.test still answered")
        check(probe("203.0.113.99"), "the shared address stays in the set")
        check(query_udp("solo.test")["rcode"] == 0, "solo.test (still added) keeps working")
        # deny evicts what only the name held, at once (not at its 300 s
        # timeout), and keeps what another allowed name holds.
        r = control("deny", "solo.test")
        check(reply(r).get("evicted") == 1, f"deny solo: {r.stdout}")
        check(not probe("203.0.113.77"), "solo.test's address left the set")
        check(control("allow", "pair-a.test", "pair-b.test").returncode == 0, "allow the pair")
        check(sorted(x for x, _ in query_udp("pair-a.test")["addrs"]) ==
              ["203.0.113.80", "203.0.113.81", "203.0.113.99"], "pair-a.test answered")
        check([x for x, _ in query_udp("pair-b.test")["addrs"]] == ["203.0.113.81"], "pair-b.test answered")
        r = control("deny", "pair-a.test")
        check(reply(r).get("evicted") == 1, f"deny pair-a: {r.stdout}")
        check(not probe("203.0.113.80"), "pair-a.test's own address left the set")
        check(probe("203.0.113.81"), "the address pair-b.test shares stays")
        check(probe("203.0.113.99"), "the address the policy's twin.test shares stays")
        check([x for x, _ in query_udp("pair-b.test")["addrs"]] == ["203.0.113.81"], "pair-b.test still answered")
        r = control("deny", "pair-b.test")
        check(reply(r).get("evicted") == 1, f"deny pair-b: {r.stdout}")
        check(not probe("203.0.113.81"), "the shared address left once its last name was taken back")
        # Allowed again: the next lookup puts the address back (the updater
        # forgot it when the kernel let go, so it is added anew).
        check(control("allow", "solo.test").returncode == 0, "allow solo.test again")
        check(query_udp("solo.test")["rcode"] == 0 and probe("203.0.113.77"), "solo.test's address back in the set")
        # Only run-time additions can be taken back.
        r = control("deny", "twin.test")
        d = reply(r)
        check(r.returncode == 2 and d.get("ok") is False and "policy file" in d.get("error", ""),
              f"deny of a policy name: {r.stdout}")
        # A request of another version, straight to the socket: refused,
        # nothing changed, and the reply says why.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sock)
            s.sendall(b'{"version":2,"op":"allow","patterns":["twin.test"]}\n')
            raw = s.makefile().readline()
        d = json.loads(raw)
        check(d.get("ok") is False and "version 2 not understood" in d.get("error", ""), f"version 2: {raw!r}")
        check(query_udp("twin.test")["rcode"] == 0, "twin.test unaffected")
        # The changes are in the decision record.
        path = os.path.join(cage.dir, "decisions.json")
        d = json.load(open(path))
        ops = [(c["op"], c["name"]) for c in d["changes"]]
        check(ops == [("allow", "solo.test"), ("allow", "evil.test"), ("deny", "evil.test"), ("deny", "solo.test"),
                      ("allow", "pair-a.test"), ("allow", "pair-b.test"), ("deny", "pair-a.test"),
                      ("deny", "pair-b.test"), ("allow", "solo.test")], f"changes: {ops}")
        # At exit the socket and its directory are gone again.
        cage.dg.send_signal(signal.SIGTERM)
        cage.dg.wait(timeout=10)
        check(not os.path.exists(os.path.dirname(sock)), "control directory removed at exit")


def case_mixed_case(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        for name in ("WwW.ExAmPlE.TeSt", "SHORT.WILD.EXAMPLE.TEST.", "www.example.test"):
            r = query_udp(name)
            check(r["rcode"] == 0 and r["addrs"], f"{name}: rcode {r['rcode']}")
            check(r["question"] == r["sent_question"], f"{name}: question case not preserved")
            check(all(probe(a) for a, _ in r["addrs"]), f"{name}: addresses in set")


def case_no_channel_in_allowed_names(args):
    """An allowed exact name must not carry the agent's data upstream: not in
    the letter case of the question, not in an odd query type, not in how
    often a negative answer is asked for again."""
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        r = query_udp("www.example.test")  # control: the legitimate path works
        check(r["rcode"] == 0 and r["addrs"] and all(probe(a) for a, _ in r["addrs"]), "control: allowed A resolves")
        before = len(cage.upstream_queries())
        # Case: every spelling reaches the upstream as the same lowercase name.
        for spelling in ("WwW.eXaMpLe.TeSt", "www.EXAMPLE.test"):
            r = query_udp(spelling, 16)  # TXT: no record, a NODATA answer
            check(r["rcode"] == 0 and r["question"] == r["sent_question"],
                  f"{spelling} TXT answered, the client's spelling echoed: rcode {r['rcode']}")
        sent = [q for q in cage.upstream_queries()[before:]]
        check(len(sent) == 1 and sent[0][1] == "www.example.test" and sent[0][2] == "16",
              f"one lowercase TXT query upstream, the NODATA kept for the second spelling: {sent}")
        # Repetition: the negative answer is kept, nothing more goes upstream.
        for _ in range(5):
            query_udp("www.example.test", 16)
        check(len(cage.upstream_queries()) == before + 1, f"repeats answered here: {cage.upstream_queries()[before:]}")
        # Type: a type number nobody asks for is NOTIMP, answered here.
        for qtype in (26725, 27756, 10):
            check(query_udp("www.example.test", qtype)["rcode"] == 4, f"type {qtype} -> NOTIMP")
        check(len(cage.upstream_queries()) == before + 1, f"odd types never reached the upstream: "
              f"{cage.upstream_queries()[before:]}")
        r = query_udp("www.example.test", 28)  # control: a common type still goes out
        check(r["rcode"] == 0 and r["addrs"], f"control: AAAA resolves (rcode {r['rcode']})")


def case_https_hints(args):
    with Cage(args, ZONE) as cage:
        cage.start_dnsguard()
        r = query_udp("svc.wild.example.test", 65)
        ok4, ok6 = probe("198.51.100.30"), probe("2001:db8:aaaa::30")
        check(r["rcode"] == 0 and any(t == 65 for t, _, _ in r["answers"]), "HTTPS answer")
        check(ok4 and ok6, "ipv4hint/ipv6hint inserted before the answer")


def set_expiry(addr):
    """(timeout, expires) of addr in allow4, in seconds, from the kernel."""
    out = run("nft", "-j", "list", "set", "inet", "cagent", "allow4").stdout
    for item in json.loads(out)["nftables"]:
        for e in item.get("set", {}).get("elem", []):
            if isinstance(e, dict) and "elem" in e and e["elem"]["val"] == addr:
                return e["elem"].get("timeout"), e["elem"].get("expires")
    return None, None


def case_floor(args):
    # Two names on one address (as with a CDN): the second answer finds the
    # address already held long enough (>= half its clamp(TTL)), so the set
    # is left alone, and that answer's TTL is capped at what the set still
    # holds: no client may keep an address longer than the set does.
    zone = {"one.wild.example.test": {"ttl": 300, "A": ["198.51.100.60"]},
            "two.wild.example.test": {"ttl": 300, "A": ["198.51.100.60"]},
            "three.wild.example.test": {"ttl": 3000, "A": ["198.51.100.60"]}}
    with Cage(args, zone) as cage:
        cage.start_dnsguard()
        r1 = query_udp("one.wild.example.test")
        check(probe("198.51.100.60"), "address in the set when the first answer arrived")
        timeout, expires = set_expiry("198.51.100.60")
        check(timeout == 300 + GRACE, f"first insert: timeout {timeout}, want exactly clamp(TTL) = 300 + grace")
        check(r1["addrs"][0][1] <= 300, f"first answer TTL {r1['addrs'][0][1]}")
        r2 = query_udp("two.wild.example.test")
        check(r2["rcode"] == 0 and probe("198.51.100.60"), "second answer, address in the set")
        timeout, expires = set_expiry("198.51.100.60")
        ttl2 = r2["addrs"][0][1]
        check(ttl2 + GRACE <= expires + 1, f"second answer TTL {ttl2} + grace above what the set still holds ({expires} s)")
        # Wants 3000 s but the set holds only ~300 (< floor 1500): extended.
        r3 = query_udp("three.wild.example.test")
        timeout, expires = set_expiry("198.51.100.60")
        check(probe("198.51.100.60") and timeout == 3000 + GRACE, f"extended to clamp(TTL) + grace: timeout {timeout}")
        check(r3["addrs"][0][1] + GRACE <= expires + 1, f"third answer TTL {r3['addrs'][0][1]} + grace > set {expires}")


# ---------------------------------------------------------------- fault: a full disk

FULL_NAMES = [f"f{i}.wild.example.test" for i in range(200)]
FULL_ZONE = dict(ZONE, **{n: {"ttl": 300, "A": [f"{'198.51.100' if i < 100 else '203.0.113'}.{100 + i % 100}"]}
                        for i, n in enumerate(FULL_NAMES)})
FLOOD = 100


def fill(directory):
    """Writes a file into `directory` until its file system refuses a single
    byte more (ENOSPC); returns its path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 1):
            try:
                for _ in range(1 << 20):
                    os.write(fd, b"\0" * chunk)
            except OSError as e:
                check(e.errno == errno.ENOSPC, f"filling {directory}: {e}")
    finally:
        os.close(fd)
    st = os.statvfs(directory)
    check(st.f_bavail == 0, f"{directory} still has {st.f_bavail} blocks free")
    return path


def brief(record):
    """A record without its lists, for messages."""
    return {k: v for k, v in record.items() if not isinstance(v, list)}


def cagent_log(args, home, session):
    """`cagent log SESSION` on the host side: its stdout, its stderr."""
    env = dict(os.environ, HOME=home, CAGENT_HOME=os.path.join(home, ".cagent"))
    p = subprocess.run([args.cagent, "log", session], capture_output=True, text=True, env=env, cwd=home, timeout=30)
    check(p.returncode == 0, f"cagent log {session}: exit {p.returncode}: {p.stderr}")
    return p.stdout, p.stderr


def full_disk_run(args, home, session, fault):
    """One dnsguard with its log directory on a 512 KiB tmpfs, in the place
    the host keeps a session's logs (CAGENT_HOME/logs/session-ID; IDs are hex).
    `fault`: None (the control: space throughout), "returns" (filled while
    the lookups run, then freed) or "stays" (full until dnsguard stops).
    Checks what the lookups get in every case; returns the final record,
    what `cagent log` said on stderr, the fault's time, dnsguard's log and
    its stderr."""
    log_dir = os.path.join(home, ".cagent", "logs", f"session-{session}")
    os.makedirs(log_dir)
    run("mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", log_dir)
    try:
        with Cage(args, FULL_ZONE, log_dir=log_dir,
                  config_extra="[gate]\nenabled = true\nport = 853") as cage:
            cage.start_dnsguard()
            allowed_control(cage, f"{session} before the fault")
            query_udp("before.denied.test")
            poll(lambda: cage.record().get("denied_total") == 1, 5, "the record with the first denial")
            journal_before = len(cage.journal_lines())
            filler = fill(log_dir) if fault else None
            t_fault = time.time()
            # Answering and enforcing go on: every allowed name is answered
            # with its address already in the set and asked upstream; every
            # denied one is refused, never forwarded, its address never in.
            for name in FULL_NAMES:
                r = query_udp(name)
                ok = {a: probe(a) for a, _ in r["addrs"]}
                check(r["rcode"] == 0 and len(ok) == 1, f"{session}: {name}: rcode {r['rcode']} addrs {r['addrs']}")
                check(all(ok.values()), f"{session}: {name}'s address not in the set when the answer arrived")
            for i in range(FLOOD):
                r = query_udp(f"d{i}.flood.test")
                check(r["rcode"] == 3 and not r["addrs"], f"{session}: d{i}.flood.test: rcode {r['rcode']}")
            check(not probe("203.0.113.99"), f"{session}: a denied name's address is reachable")
            asked = {q[1].lower() for q in cage.upstream_queries()}
            check(all(n in asked for n in FULL_NAMES), f"{session}: allowed names missing upstream")
            check(not any(n.endswith("flood.test") for n in asked), f"{session}: a denied name reached the upstream")
            check(cage.dg.poll() is None, f"{session}: dnsguard died: {cage.stderr_text()}")
            total = 1 + FLOOD
            if fault:
                # What the full disk costs while it lasts: the record on disk
                # stays as it was, and dnsguard says so once, not per write.
                time.sleep(2.5)  # two of the record's once-a-second rewrites fail meanwhile
                check(cage.record().get("denied_total") == 1, f"{session}: record on a full disk changed")
                err = cage.stderr_text()
                check(err.count("decision record:") == 1, f"{session}: record failure said once: {err!r}")
                check("No space left on device" in err, f"{session}: the failure named: {err!r}")
            if fault == "stays":
                # The record can no longer say it is incomplete: the host tells
                # by its age (dnsguard promises a rewrite every 10 s).
                poll(lambda: "not since" in cagent_log(args, home, session)[1], 40,
                     "cagent log saying the running session's record is stale", interval=1)
            if fault == "returns":
                os.remove(filler)
                poll(lambda: cage.record().get("denied_total") == total, 10,
                     "the record written again once space returned")
            cage.dg.send_signal(signal.SIGTERM)
            cage.dg.wait(timeout=10)
            check(cage.dg.returncode == 0, f"{session}: dnsguard exit {cage.dg.returncode}: {cage.stderr_text()}")
            record = cage.record()
            journal_new = len(cage.journal_lines()) - journal_before
            lost = (record.get("incomplete") or {}).get("bindings_lost", 0)
            if fault != "stays":
                # Every new binding is in the journal or counted as lost.
                check(journal_new + lost == len(FULL_NAMES),
                      f"{session}: {journal_new} journalled + {lost} lost != {len(FULL_NAMES)} bindings")
                check(record.get("denied_total") == total, f"{session}: denied_total {record.get('denied_total')}")
                check(record.get("final") is True, f"{session}: the last write is not final: {brief(record)}")
            _, said = cagent_log(args, home, session)
            # What the files said, read before the tmpfs goes.
            return {"record": record, "said": said, "t_fault": t_fault, "log": cage.log_text(),
                    "stderr": cage.stderr_text()}
    finally:
        subprocess.run(["umount", log_dir], capture_output=True)


def full_disk_control(args, home):
    """The positive control, same setup with space throughout: a whole
    record with exact totals, every binding journalled, nothing said."""
    out = full_disk_run(args, home, "c0", None)
    record = out["record"]
    check(record.get("incomplete") is None, f"control: record marked incomplete: {record.get('incomplete')}")
    check(record.get("rewritten_every") == 10, f"control: rewritten_every {record.get('rewritten_every')}")
    check("incomplete" not in out["said"], f"control: cagent log says: {out['said']!r}")
    check(out["stderr"] == "", f"control: dnsguard said on stderr: {out['stderr']!r}")


def case_disk_full_returns(args):
    """The log directory fills while the agent looks names up, and space
    comes back before the session ends: answering and enforcing never stop,
    the record comes back with exact totals and says what was lost, since
    when and why, and the host says so."""
    home = tempfile.mkdtemp(prefix="dnsguard-home-")
    try:
        full_disk_control(args, home)
        out = full_disk_run(args, home, "a1", "returns")
        record, said, t_fault = out["record"], out["said"], out["t_fault"]
        inc = record.get("incomplete")
        check(isinstance(inc, dict), f"returns: record not marked incomplete: {brief(record)}")
        check(t_fault - 2 <= inc["since"] <= t_fault + 5, f"returns: since {inc['since']}, fault at {t_fault:.0f}")
        check("No space left on device" in inc["reason"], f"returns: reason {inc['reason']!r}")
        check(inc["record_writes_failed"] >= 2, f"returns: record_writes_failed {inc['record_writes_failed']}")
        check(inc["bindings_lost"] > 0 and inc["log_lines_lost"] > 0, f"returns: losses {inc}")
        check(inc["totals_short"] is False, f"returns: totals_short {inc}")
        log_dir = os.path.join(home, ".cagent", "logs", "session-a1")
        check(f"the decision record is incomplete: writing to the log directory {log_dir} failed from" in said
              and "its counts are exact" in said, f"returns: cagent log says {said!r}")
        check("lines could not be written (No space left on device); writing again" in out["log"],
              "returns: the log says what it lost once it takes lines again")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def case_disk_full_stays(args):
    """The log directory fills and stays full until dnsguard stops: answering
    and enforcing never stop, dnsguard exits cleanly, and the host, which
    reads a record stuck before the fault, says it is incomplete."""
    home = tempfile.mkdtemp(prefix="dnsguard-home-")
    try:
        full_disk_control(args, home)
        out = full_disk_run(args, home, "a2", "stays")
        record, said = out["record"], out["said"]
        check(record.get("denied_total") == 1 and record.get("final") is False,
              f"stays: the record on disk should be the one before the fault: {brief(record)}")
        log_dir = os.path.join(home, ".cagent", "logs", "session-a2")
        check("the decision record is incomplete: dnsguard last wrote it at" in said and "its counts stop there" in said,
              f"stays: cagent log says {said!r}")
        check(f"the log directory {log_dir} is full" in said, f"stays: the full directory named: {said!r}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def case_concurrency(args, cache_size=10000):
    names = [f"n{i}.wild.example.test" for i in range(200)]
    pool = [f"198.51.100.{i}" for i in range(40, 240)] + [f"203.0.113.{i}" for i in range(20, 240)]
    zone = {n: {"ttl": 300, "rotate": True, "A": random.Random(i).sample(pool, 8)} for i, n in enumerate(names)}
    clients, per_client = 50, 200
    failures, lost = [], []
    with Cage(args, zone, config_extra=f"[cache]\nsize = {cache_size}") as cage:
        cage.start_dnsguard()

        def client(k):
            rnd = random.Random(k)
            order = names[:]
            rnd.shuffle(order)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for name in order[:per_client]:
                    try:
                        r = query_udp(name, sock=s, timeout=5)
                    except socket.timeout:
                        lost.append(name)
                        continue
                    for a, _ in r["addrs"]:
                        if not probe(a):
                            failures.append((name, a))
                    if r["rcode"] != 0 or not r["addrs"]:
                        failures.append((name, f"rcode {r['rcode']}"))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        took = time.monotonic() - t0
        check(not any(t.is_alive() for t in threads), "clients did not finish in 300 s")
        check(not lost, f"{len(lost)} queries lost, e.g. {lost[:3]}")
        check(not failures, f"{len(failures)} answers with addresses not in the set: {failures[:5]}")
        print(f"concurrency: {clients * per_client} queries in {took:.1f}s, "
              f"{len(cage.upstream_queries())} reached the upstream")


def case_concurrency_nocache(args):
    # Every query goes upstream and gets a rotated address: many concurrent
    # inserts for the same names, each racing its own answer.
    case_concurrency(args, cache_size=0)


def case_fair_share(args):
    """One socket's flood of misses takes only its share of the upstream
    lookups (dnsguard/source_flights.hpp), and another socket's miss is
    answered while the flood's wait. The upstream holds every flood answer
    for HOLD s, so what it has seen at any instant is what dnsguard let out.
    Controls in the same setup: the probe's lookup (another socket) reaches
    the upstream and is answered during the hold; every flood query is
    answered in the end, none dropped; the flood's own next miss waits."""
    share, flood_n, hold = 64, 200, 0.6  # share: SourceFlights::kFlightsPerSource
    flood_names = [f"f{i}.wild.example.test" for i in range(flood_n)]
    zone = dict(ZONE)
    for i, n in enumerate(flood_names):
        zone[n] = {"ttl": 300, "delay": hold, "A": [f"198.51.100.{100 + i % 100}"]}
    with Cage(args, zone) as cage:
        cage.start_dnsguard()

        def flood_seen():
            return {q[1].lower() for q in cage.upstream_queries() if q[1].lower().startswith("f")}

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            flood.connect(("127.0.0.1", 53))
            for i, n in enumerate(flood_names):
                flood.send(build_query(n, 1, qid=i)[1])
            poll(lambda: len(flood_seen()) >= share, 5, f"{share} flood lookups at the upstream")
            # The probe, from another socket: a miss too (never asked before).
            t0 = time.monotonic()
            r = query_udp("www.example.test", timeout=5)
            took = time.monotonic() - t0
            seen_with_probe = len(flood_seen())
            flood.setblocking(False)
            try:
                early = flood.recv(4096)
            except BlockingIOError:
                early = None
            # Only meaningful while the flood's first answers are still held.
            check(early is None, "a flood answer arrived before the probe was checked: the hold "
                                 f"({hold} s) was too short on this machine; took {took:.3f} s")
            check(r["rcode"] == 0 and r["addrs"], f"probe answer {r}")
            check(any(q[1] == "www.example.test" for q in cage.upstream_queries()),
                  "the probe's lookup went to the upstream (it was a miss)")
            check(seen_with_probe == share,
                  f"the upstream saw {seen_with_probe} flood lookups at once; the share is {share}")
            # Every flood query is answered in the end: waiting, not dropping.
            flood.setblocking(True)
            flood.settimeout(10)
            answered = set()
            while len(answered) < flood_n:
                try:
                    data = flood.recv(4096)
                except socket.timeout:
                    break
                answered.add(struct.unpack("!H", data[:2])[0])
            check(len(answered) == flood_n, f"{flood_n - len(answered)} flood queries never answered")
        check(len(flood_seen()) == flood_n, f"the upstream saw {len(flood_seen())} of {flood_n} flood names")
        cage.dg.send_signal(signal.SIGUSR1)
        poll(lambda: "source_waited=" in cage.log_text(), 5, "counters line")
        m = re.search(r"source_waited=(\d+)", cage.log_text())
        check(m and int(m.group(1)) == flood_n - share,
              f"source_waited={m and m.group(1)}; expected {flood_n - share} (the flood beyond its share)")
        check(" overload=0" in cage.log_text(), "no query dropped as overload")
        print(f"fair_share: probe answered in {took * 1000:.1f} ms with {seen_with_probe} flood lookups held")


def case_refresh(args):
    zone = {"www.example.test": {"ttl": 1, "A": ["198.51.100.77"]}}
    # The interval (5 s) outlasts what the set holds (1 s + grace), so the
    # entry can be seen expiring between two rounds.
    with Cage(args, zone, refresh=5, ttl=(1, 1)) as cage:
        t_start = time.monotonic()
        cage.start_dnsguard()
        # The first round waits one interval (5 s): nothing reaches the
        # upstream at start. Only a lower bound is checked (a busy machine
        # can only make the first query later, never earlier).
        poll(lambda: cage.upstream_queries(), 12, "the first refresh round")
        waited = time.monotonic() - t_start
        check(waited >= 4.5, f"first refresh round {waited:.2f}s after start, want one interval (5 s)")
        # No client query at all: the refresh alone puts the address in,
        # it expires (1 s timeout + grace), and the next round puts it back.
        poll(lambda: probe("198.51.100.77"), 8, "refresh inserting 198.51.100.77")
        poll(lambda: not probe("198.51.100.77"), 8, "the entry expiring")
        poll(lambda: probe("198.51.100.77"), 8, "refresh re-populating the expired entry")
        # A failing name is logged and does not stop the refresh.
        cage.write_zone({"www.example.test": {"drop": True}})
        poll(lambda: "refresh www.example.test type 1 failed" in cage.log_text(), 10, "refresh failure logged")
        cage.write_zone(zone)
        poll(lambda: probe("198.51.100.77"), 10, "refresh recovering after failures")
        check(cage.dg.poll() is None, "dnsguard died")
        cage.dg.send_signal(signal.SIGTERM)
        cage.dg.wait(timeout=5)
        check(cage.dg.returncode == 0, f"SIGTERM exit status {cage.dg.returncode}")
        check("counters queries=" in cage.log_text(), "counters at exit")


def case_check(args):
    d = tempfile.mkdtemp(prefix="dnsguard-check-")
    try:
        cases = [
            ('allow = ["a.test"]\nupstreams = ["192.0.2.53"]\n', 0, None),
            ('bogus = 1\nupstreams = ["192.0.2.53"]\n', 1, "bogus"),
            ('upstreams = ["192.0.2.53"]\n[ttl]\nmin = 0\n', 1, "ttl.min"),
            ('upstreams = ["192.0.2.53"]\n[cache]\nsize = "big"\n', 1, "cache.size"),
            ('upstreams = ["192.0.2.53"]\nallow = ["*bad*.test"]\n', 1, "allow"),
            ('upstreams = ["192.0.2.53"]\ndeny_rcode = "drop"\n', 1, "deny_rcode"),
            ('upstreams = ["not-an-ip"]\n', 1, "upstreams"),
            ('upstreams = ["192.0.2.53"]\n[nft]\ncolour = "red"\n', 1, "nft.colour"),
            ('upstreams = ["192.0.2.53"]\nallow_cidrs = ["203.0.113.1/24"]\n', 1, "allow_cidrs"),
        ]
        for i, (text, status, key) in enumerate(cases):
            path = os.path.join(d, f"c{i}.toml")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([args.dnsguard, "--config", path, "--check"], capture_output=True, text=True, timeout=10)
            check(p.returncode == status, f"case {i}: exit {p.returncode}, want {status}: {p.stderr}")
            if key:
                lines = p.stderr.strip().splitlines()
                check(len(lines) == 1 and key in lines[0] and path in lines[0],
                      f"case {i}: message should be one line naming {key} and the file: {p.stderr!r}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- ask mode

TIMED_OUT = b"pending approval timed out"
POLICY = b"blocked by cagent policy"


class Watcher:
    """dnsguard --control SOCKET watch, as the host's cagent watch runs it
    (through docker exec -i): its stdin a pipe that detaches it when closed."""

    def __init__(self, args, sock):
        self.p = subprocess.Popen([args.dnsguard, "--control", sock, "watch"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next(5)
        check(first.get("op") == "watch" and first.get("ok") is True, f"watch reply: {first}")

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout):
        try:
            got = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise Failure(f"no watch event within {timeout} s")
        check(got is not None, f"the watch ended: {self.p.stderr.read() if self.p.poll() is not None else ''}")
        return got

    def expect(self, event, name, timeout=5):
        end = time.monotonic() + timeout
        while True:
            e = self.next(max(0.05, end - time.monotonic()))
            if e.get("event") == event and e.get("name") == name:
                return e

    def close(self):
        self.p.stdin.close()
        return self.p.wait(timeout=5)


def in_background(fn):
    """Runs fn in a thread; .result() is its value (or raises its exception)."""
    box = {}

    def run_it():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 — handed to the caller
            box["error"] = e
    t = threading.Thread(target=run_it, daemon=True)
    t.start()

    class Handle:
        def result(self, timeout=15):
            t.join(timeout)
            check(not t.is_alive(), "the query never returned")
            if "error" in box:
                raise box["error"]
            return box["value"]
    return Handle()


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure("no VmRSS")


def case_ask_mode(args):
    """Ask mode against the real dnsguard and sets: a denied lookup waits for
    the approver while one watches; allow answers it (set before answer),
    refuse and the timeout deny it with the EDE text saying which; without a
    watcher nothing is held; a flood of names is bounded."""
    zone = dict(ZONE)
    addr = {"later.test": "203.0.113.51", "tcp-later.test": "203.0.113.52", "kept.test": "203.0.113.53",
            "slow.test": "203.0.113.54", "left.test": "203.0.113.55"}
    for n, a in addr.items():
        zone[n] = {"ttl": 300, "A": [a]}
    with Cage(args, zone, config_extra="[ask]\nenabled = true\ntimeout = 2\n") as cage:
        cage.start_dnsguard()
        sock = os.path.join(cage.dir, "control", "dnsguard.sock")

        def control(*words):
            return subprocess.run([args.dnsguard, "--control", sock, *words], capture_output=True, text=True,
                                  timeout=10)

        # No watcher: denied at once, with the policy's text, and nothing held.
        t0 = time.monotonic()
        r = query_udp("later.test")
        check(r["rcode"] == 3 and POLICY in r["raw"] and TIMED_OUT not in r["raw"],
              f"no watcher: denied at once with the policy text: rcode {r['rcode']}")
        check(time.monotonic() - t0 < 1.0, "no watcher: not held")
        check(query_udp("www.example.test")["rcode"] == 0, "control: an allowed name resolves")

        # Only root may watch (the agent's uid cannot reach the socket).
        os.chmod(cage.dir, 0o755)
        other = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                                args.dnsguard, "--control", sock, "watch"], capture_output=True, text=True,
                               timeout=10, stdin=subprocess.DEVNULL)
        check(other.returncode == 1 and "Permission denied" in other.stderr,
              f"another uid cannot watch: {other.returncode} {other.stderr}")

        w = Watcher(args, sock)
        # Allowed while held: the one query is answered, its address in the set first.
        pending = in_background(lambda: query_udp("later.test", timeout=8))
        held = w.expect("held", "later.test")
        check(held.get("type") == 1 and held.get("wait_ms") == 2000, f"held event: {held}")
        t_allow = time.monotonic()
        check(control("allow", "later.test").returncode == 0, "allow later.test")
        r = pending.result()
        waited_ms = (time.monotonic() - t_allow) * 1000
        check(r["rcode"] == 0 and [a for a, _ in r["addrs"]] == [addr["later.test"]],
              f"held then allowed: answered with its address (rcode {r['rcode']}, {r['addrs']})")
        check(all(probe(a) for a, _ in r["addrs"]), "held then allowed: the address is in the set")
        w.expect("allowed", "later.test")
        print(f"# measured: allow to the held query's answer: {waited_ms:.1f} ms (incl. the dnsguard --control process)")

        # The same over TCP.
        def tcp_query(name):
            with socket.create_connection(("127.0.0.1", 53), timeout=8) as c:
                _, q = build_query(name, 1)
                c.sendall(struct.pack("!H", len(q)) + q)
                n = struct.unpack("!H", recv_exact(c, 2))[0]
                return parse_response(recv_exact(c, n))
        pending = in_background(lambda: tcp_query("tcp-later.test"))
        w.expect("held", "tcp-later.test")
        check(control("allow", "tcp-later.test").returncode == 0, "allow tcp-later.test")
        r = pending.result()
        check(r["rcode"] == 0 and r["addrs"] and all(probe(a) for a, _ in r["addrs"]), "TCP: held then allowed")

        # Kept denied: answered at once with the policy's text, not the timeout's.
        pending = in_background(lambda: query_udp("kept.test", timeout=8))
        w.expect("held", "kept.test")
        t0 = time.monotonic()
        rr = control("refuse", "kept.test")
        check(rr.returncode == 0 and json.loads(rr.stdout).get("names") == ["kept.test"], f"refuse: {rr.stdout}")
        r = pending.result()
        check(time.monotonic() - t0 < 1.0, "refused: answered at once")
        check(r["rcode"] == 3 and POLICY in r["raw"] and TIMED_OUT not in r["raw"], "refused: the policy's text")
        w.expect("refused", "kept.test")
        check(not probe(addr["kept.test"]), "refused: its address never entered the set")
        # Kept denied stays the answer for the session: asked again, denied at once, not held.
        t0 = time.monotonic()
        r = query_udp("kept.test")
        check(r["rcode"] == 3 and time.monotonic() - t0 < 1.0, "kept denied: asked again, denied at once")
        # A name no allow could name is not held either (a label that starts or ends with "-").
        for odd in ("-lead.test", "trail-.test"):
            t0 = time.monotonic()
            r = query_udp(odd)
            check(r["rcode"] in (3, 5) and time.monotonic() - t0 < 1.0, f"{odd!r}: denied at once, not held")

        # Nobody decides: denied after ask.timeout, saying so.
        t0 = time.monotonic()
        r = query_udp("slow.test", timeout=8)
        took = time.monotonic() - t0
        check(r["rcode"] == 3 and TIMED_OUT in r["raw"], f"timed out: rcode {r['rcode']}, the timeout's text")
        check(1.5 < took < 4, f"timed out after about ask.timeout (2 s): {took:.2f} s")
        w.expect("timed_out", "slow.test")

        # The flood: 1 000 distinct names at once. At most 64 names are held,
        # the rest denied at once; every query is answered; memory stays put.
        while not w.lines.empty():
            w.lines.get_nowait()  # what came before the flood (not what it brings: cleared before it is sent)
        rss_before = vm_rss_kib(cage.dg.pid)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.settimeout(8)
        ids = set()
        for i in range(1000):
            qid, q = build_query(f"flood{i}.nowhere.test", 1, qid=i)
            ids.add(qid)
            s.sendto(q, ("127.0.0.1", 53))
        answered, timed_out_texts = set(), 0
        t0 = time.monotonic()
        while answered != ids and time.monotonic() - t0 < 8:
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                break
            r = parse_response(data)
            answered.add(r["id"])
            timed_out_texts += TIMED_OUT in data
        s.close()
        rss_after = vm_rss_kib(cage.dg.pid)
        print(f"# measured: dnsguard VmRSS {rss_before} KiB before 1000 denied names, {rss_after} KiB after")
        check(answered == ids, f"flood: {len(ids - answered)} of 1000 queries never answered")
        check(timed_out_texts <= 64, f"flood: at most 64 names held, {timed_out_texts} timed out")
        check(timed_out_texts > 0, "flood: some were held (the bound, not ask being off, denied the rest)")
        check(rss_after - rss_before < 8 * 1024, f"flood: VmRSS grew {rss_after - rss_before} KiB")
        os.kill(cage.dg.pid, signal.SIGUSR1)
        poll(lambda: "held_overflow=" in cage.log_text(), 5, "counters line")
        m = re.findall(r"held_overflow=(\d+)", cage.log_text())
        check(int(m[-1]) >= 900, f"flood: held_overflow={m[-1]}")
        check(query_udp("www.example.test")["rcode"] == 0, "after the flood: an allowed name resolves")
        # The approver was not buried: held names (at most 64) were told,
        # `denied` ones at most 10 a second, the rest counted in `dropped`.
        events = []
        while not w.lines.empty():
            events.append(w.lines.get_nowait())
        held_ev = [e for e in events if e.get("event") == "held" and e.get("name", "").startswith("flood")]
        denied_ev = [e for e in events if e.get("event") == "denied" and e.get("name", "").startswith("flood")]
        dropped = sum(e.get("dropped", 0) for e in events)
        print(f"# flood as the watcher saw it: {len(held_ev)} held, {len(denied_ev)} denied, {dropped} dropped")
        check(0 < len(held_ev) <= 64, f"flood: held events {len(held_ev)}")
        check(len(denied_ev) <= 40, f"flood: denied events {len(denied_ev)} (10 a second)")
        check(dropped >= 800, f"flood: the rest counted as dropped ({dropped})")

        # The watcher leaves: what it left undecided is denied at once.
        pending = in_background(lambda: query_udp("left.test", timeout=8))
        w.expect("held", "left.test")
        t0 = time.monotonic()
        check(w.close() == 0, "the watch client exits 0 when its stdin ends")
        r = pending.result()
        check(time.monotonic() - t0 < 1.0 and r["rcode"] == 3, "watcher gone: denied at once")
        r = query_udp("left.test")
        check(r["rcode"] == 3 and POLICY in r["raw"], "no watcher again: denied as always")

        # dnsguard stops while a watcher is attached and a lookup is held:
        # a clean exit, the final record written, the watch told it ended.
        w2 = Watcher(args, sock)
        pending = in_background(lambda: query_udp("left.test", timeout=3))
        w2.expect("held", "left.test")
        # … with a TCP lookup held and an idle TCP connection too.
        pending_tcp = in_background(lambda: tcp_query("tcp-held.test"))
        w2.expect("held", "tcp-held.test")
        idle = socket.create_connection(("127.0.0.1", 53), timeout=5)
        cage.dg.terminate()
        check(cage.dg.wait(timeout=10) == 0, f"dnsguard exit status with a watcher attached: {cage.dg.returncode}")
        check(cage.record().get("final") is True, "the final record written")
        check(w2.p.wait(timeout=5) == 1, f"the watch client says dnsguard ended it: {w2.p.returncode}")
        for p in (pending, pending_tcp):
            try:
                p.result()
            except (socket.timeout, Failure, OSError):
                pass  # unanswered: dnsguard stopped (the client would retry its next resolver)
        idle.close()
        check("AddressSanitizer" not in cage.stderr_text(), cage.stderr_text())


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}
MOUNT_CASES = {"disk_full_returns", "disk_full_stays"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dnsguard", required=True)
    ap.add_argument("--fake-dns", required=True)
    ap.add_argument("--cagent", help="the host's cagent (the disk_full cases read the record with it)")
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    if args.cagent:
        args.cagent = os.path.abspath(args.cagent)  # run from another directory
    if not os.access(args.dnsguard, os.X_OK):
        print(f"dnsguard binary missing: {args.dnsguard}")
        return 1
    if args.case == "check":
        CASES["check"](args)
        print("ok")
        return 0
    if os.environ.get("DNSGUARD_NETNS_INNER") != "1":
        if os.geteuid() != 0:
            skip("needs root for network namespaces and nftables")
        for tool in ("unshare", "ip", "nft"):
            if shutil.which(tool) is None:
                skip(f"{tool} not installed")
        probe_ns = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe_ns.returncode != 0:
            skip("cannot create a network namespace (unshare -n failed)")
        if args.case in MOUNT_CASES:
            if not args.cagent or not os.access(args.cagent, os.X_OK):
                print(f"cagent binary missing: {args.cagent}")
                return 1
            if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
                skip("cannot create a mount namespace (unshare -m failed)")
        env = dict(os.environ, DNSGUARD_NETNS_INNER="1")
        # The disk cases mount a tmpfs: in a mount namespace of their own
        # (private propagation), so nothing of it is seen outside or outlives them.
        ns = ["-n", "-m"] if args.case in MOUNT_CASES else ["-n"]
        return subprocess.run(["unshare", *ns, "--", sys.executable] + sys.argv, env=env).returncode
    try:
        CASES[args.case](args)
    except Failure as e:
        print(f"FAIL {args.case}: {e}")
        return 1
    print(f"ok {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
