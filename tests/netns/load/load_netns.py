#!/usr/bin/env python3
"""dnsguard under load from a hostile agent, in network namespaces (fault tier).

  load_netns.py --dnsguard BIN --bench BIN CASE

Two namespaces joined by a veth pair, documentation addresses only:

  cage  cl-c<pid>  192.0.2.2     the real cage ruleset (cagent-bench ruleset),
                                 dnsguard as uid 4242 with the gate on port 999
                                 and RLIMIT_NOFILE 4096 (prlimit), the agent's
                                 clients as uid 4343, this script's probes (root)
  world cl-w<pid>  192.0.2.53    cagent-bench serve: the upstream for load.test
                                 (A from a hash of the name in 198.51.100.0/24,
                                 which is local there); cagent-bench http-serve
                                 on :80 of every one of those addresses

RLIMIT_NOFILE 4096 gives dnsguard's descriptor budget (dnsguard/fd_budget.hpp)
small numbers that a test can exceed: 59 DNS-over-TCP slots, 1890 upstream
queries and 334 gate connections (the start-up log line says so; the test
reads them from there).

Cases (each with its positive control in the same setup):
  floods      a flood of denied random names, of allowed names, and 600
              gate connections held at once (past the gate's cap): an allowed
              lookup from another process answers correctly throughout
              (latency printed, not judged), the record's totals equal what
              was sent, descriptors stay under the limit; the same checks
              before any flood and after them all.
  handshakes  600 silent gate connections with 8192 descriptors (gate cap
              676): 512 wait for their hellos, the rest are refused at once
              and recorded; once they are gone the gate works again.
  emfile      the descriptor limit lowered under dnsguard while it runs
              (prlimit --pid), the gate's and the DNS-over-TCP listeners
              with connections waiting: accept() fails with EMFILE and
              dnsguard must not spin (its CPU time
              from /proc), must keep answering DNS, and must still write
              the decision record; after the limit is restored everything
              works again.
  slow_tcp    200 DNS-over-TCP clients that send one byte and stop: a new
              client is still answered (a slot is taken back), and the
              trickling ones are closed at the per-query deadline.
  relay_idle  an admitted relay with no traffic is ended after the idle
              timeout (shortened to 3 s for the test with
              CAGENT_GATE_IDLE_TIMEOUT); a relay with traffic is not.

Exit 0 pass, 1 fail, 77 skipped (printed as "skipped: <reason>").
"""
import argparse
import json
import os
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
DG_UID = 4242
AGENT_UID = 4343
UPSTREAM = "192.0.2.53"
NOFILE = 4096
# dnsguard's descriptor budget for NOFILE (fd_budget.hpp, unit-tested there):
# DNS-over-TCP slots, upstream queries, gate connections. dnsguard logs it.
BUDGET = (59, 1890, 334)
TCP_SLOTS, _, GATE_CAP = BUDGET
GATE_PORT = 999


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print(f"ok - {what}", flush=True)


def skip(reason):
    print(f"skipped: {reason}")
    sys.exit(SKIP)


def run(*cmd, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise Failure(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[:300]}")
    return r


def poll(cond, deadline_s, interval=0.05):
    """Polls cond() until true or the deadline passes; returns its last value."""
    end = time.monotonic() + deadline_s
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)  # polling interval, not synchronisation


# ---------------------------------------------------------------- DNS client

def build_query(name, qtype=1, qid=None):
    qid = int.from_bytes(os.urandom(2), "big") if qid is None else qid
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return qid, q + b"\x00" + struct.pack("!HH", qtype, 1)


def parse_answer(msg):
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    pos = 12
    for _ in range(qd):
        while msg[pos] != 0:
            pos += 1 + msg[pos]
        pos += 5
    addrs = []
    for _ in range(an):
        if msg[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while msg[pos] != 0:
                pos += 1 + msg[pos]
            pos += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        if rtype == 1:
            addrs.append(socket.inet_ntoa(msg[pos + 10:pos + 14]))
        pos += 10 + rdlen
    return qid, flags & 0xF, addrs


def query_udp(name, timeout=2.0):
    """(rcode, addresses, seconds) of one A lookup at dnsguard; rcode None: no answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        qid, q = build_query(name)
        t0 = time.monotonic()
        s.sendto(q, ("127.0.0.1", 53))
        try:
            while True:
                data = s.recv(4096)
                got, rcode, addrs = parse_answer(data)
                if got == qid:
                    return rcode, addrs, time.monotonic() - t0
        except socket.timeout:
            return None, [], time.monotonic() - t0


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def query_tcp(name, sock=None, split=None, timeout=5.0):
    """One A lookup over TCP (a fresh connection unless `sock`); `split`:
    seconds to wait between the two halves of the query."""
    own = sock is None
    s = sock or socket.create_connection(("127.0.0.1", 53), timeout=timeout)
    try:
        s.settimeout(timeout)
        qid, q = build_query(name)
        msg = struct.pack("!H", len(q)) + q
        if split:
            s.sendall(msg[:5])
            time.sleep(split)  # a client that sends its query in two segments
            s.sendall(msg[5:])
        else:
            s.sendall(msg)
        head = recv_exact(s, 2)
        if head is None:
            return None, []
        body = recv_exact(s, struct.unpack("!H", head)[0])
        if body is None:
            return None, []
        got, rcode, addrs = parse_answer(body)
        return (rcode if got == qid else None), addrs
    except OSError:
        return None, []
    finally:
        if own:
            s.close()


# ---------------------------------------------------------------- the world

def enter_netns(name):
    """setns(2) into a named network namespace (Python 3.11 has no os.setns).
    Called before any thread starts: threads and children inherit it."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise Failure(f"setns {name}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


class World:
    def __init__(self, args):
        self.args = args
        self.id = os.getpid()
        self.cage = f"cl-c{self.id}"
        self.world = f"cl-w{self.id}"
        self.dir = tempfile.mkdtemp(prefix="cagent-load.")
        os.chmod(self.dir, 0o755)
        self.log_dir = os.path.join(self.dir, "log")
        self.procs = []
        self.dg = None
        # Everything another uid runs is copied here: the checkout may sit
        # under a 0700 home.
        self.dnsguard = os.path.join(self.dir, "dnsguard")
        self.bench = os.path.join(self.dir, "cagent-bench")
        shutil.copy(args.dnsguard, self.dnsguard)
        shutil.copy(args.bench, self.bench)
        os.chmod(self.dnsguard, 0o755)
        os.chmod(self.bench, 0o755)

    def C(self, *cmd):
        return ["ip", "netns", "exec", self.cage, *cmd]

    def W(self, *cmd):
        return ["ip", "netns", "exec", self.world, *cmd]

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, stdout=kw.pop("stdout", subprocess.DEVNULL),
                             stderr=open(os.path.join(self.dir, "stderr"), "a"), **kw)
        self.procs.append(p)
        return p

    def __enter__(self):
        try:
            run("ip", "netns", "add", self.world)
            run("ip", "netns", "add", self.cage)
        except Failure:
            skip("cannot create network namespaces")
        c, w = self.C, self.W
        run("ip", "link", "add", f"lc{self.id}", "netns", self.cage, "type", "veth", "peer", "name", f"lw{self.id}",
            "netns", self.world)
        for ns in (c, w):
            run(*ns("ip", "link", "set", "lo", "up"))
        run(*c("ip", "addr", "add", "192.0.2.2/24", "dev", f"lc{self.id}"))
        run(*w("ip", "addr", "add", f"{UPSTREAM}/24", "dev", f"lw{self.id}"))
        run(*c("ip", "link", "set", f"lc{self.id}", "up"))
        run(*w("ip", "link", "set", f"lw{self.id}", "up"))
        run(*c("ip", "route", "add", "198.51.100.0/24", "dev", f"lc{self.id}"))
        # Every answer address is the world's own: one server answers them all.
        run(*w("ip", "route", "add", "local", "198.51.100.0/24", "dev", "lo"))
        dns_out = os.path.join(self.dir, "serve.out")
        http_out = os.path.join(self.dir, "http.out")
        self.spawn(w(self.bench, "serve", "--listen", f"{UPSTREAM}:53", "--zone", "load.test", "--ttl", "300"),
                   stdout=open(dns_out, "w"))
        self.spawn(w(self.bench, "http-serve", "--listen", "0.0.0.0:80"), stdout=open(http_out, "w"))
        if not poll(lambda: "ready" in open(dns_out).read() and "ready" in open(http_out).read(), 10):
            raise Failure("world servers did not start")
        # From here on this process (and every thread and child it starts)
        # lives in the cage's namespace, as the agent's processes would.
        enter_netns(self.cage)
        run(self.bench, "ruleset", "--upstream", f"{UPSTREAM}:53", "--resolver-uid", str(DG_UID),
            "--gate-port", str(GATE_PORT), "--gated", "80", "--gated", "443")
        os.mkdir(self.log_dir, 0o755)
        os.chown(self.log_dir, DG_UID, DG_UID)
        with open(os.path.join(self.dir, "policy.toml"), "w") as f:
            f.write('listen = ["127.0.0.1:53", "[::1]:53"]\n'
                    f'upstreams = ["{UPSTREAM}:53"]\n'
                    'allow = ["*.load.test"]\n'
                    f'[gate]\nenabled = true\nport = {GATE_PORT}\ntls_ports = [443]\nhttp_ports = [80]\n'
                    f'[log]\nfile = "{self.log_dir}/dnsguard.log"\nlevel = "info"\n')
        os.chmod(os.path.join(self.dir, "policy.toml"), 0o644)
        return self

    def start_dnsguard(self, env=None, nofile=NOFILE):
        argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--",
                      "setpriv", "--reuid", str(DG_UID), "--regid", str(DG_UID), "--clear-groups",
                      "--inh-caps", "+net_admin,+net_bind_service", "--ambient-caps", "+net_admin,+net_bind_service",
                self.dnsguard, "--config", os.path.join(self.dir, "policy.toml")]
        self.dg = self.spawn(argv, env=dict(os.environ, **(env or {})))
        if not poll(lambda: "dnsguard ready" in self.log() or self.dg.poll() is not None, 10):
            raise Failure("dnsguard did not start")
        if self.dg.poll() is not None:
            raise Failure(f"dnsguard exited: {self.log()}")
        # prlimit and setpriv each exec the next: the pid is dnsguard's.
        self.pid = self.dg.pid
        if os.readlink(f"/proc/{self.pid}/exe") != self.dnsguard:
            raise Failure(f"pid {self.pid} is not dnsguard")
        m = re.search(r"DNS over TCP (\d+), upstream queries (\d+), gate (\d+) connections", self.log())
        self.budget = tuple(map(int, m.groups())) if m else None
        print(f"   dnsguard pid {self.pid}, RLIMIT_NOFILE {nofile}: {m.group(0) if m else 'no budget in its log'}",
              flush=True)

    def log(self):
        try:
            with open(os.path.join(self.log_dir, "dnsguard.log")) as f:
                return f.read()
        except OSError:
            return ""

    def record(self):
        try:
            with open(os.path.join(self.log_dir, "decisions.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_soft_limit(self, soft):
        """dnsguard's RLIMIT_NOFILE soft limit, changed while it runs. As
        dnsguard's own uid: a test machine's root may lack CAP_SYS_RESOURCE,
        and the soft limit moves freely below the hard one."""
        run("setpriv", "--reuid", str(DG_UID), "--regid", str(DG_UID), "--clear-groups",
            "prlimit", "--pid", str(self.pid), f"--nofile={soft}:{NOFILE}")

    def as_agent(self, *cmd):
        return ["setpriv", "--reuid", str(AGENT_UID), "--regid", str(AGENT_UID), "--clear-groups", *cmd]

    def bench_json(self, *args, timeout=120):
        out = subprocess.run(self.as_agent(self.bench, *args), capture_output=True, text=True, timeout=timeout)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if not lines:
            raise Failure(f"cagent-bench {' '.join(args)}: no report ({out.stderr.strip()[:300]})")
        return json.loads(lines[-1])

    def __exit__(self, exc_type, exc, tb):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if exc_type is not None:
            sys.stderr.write("--- dnsguard log (tail) ---\n" + self.log()[-3000:])
        for ns in (self.cage, self.world):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                if int(pid) == os.getpid():
                    continue  # this script lives in the cage's namespace too
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


# ---------------------------------------------------------------- probes

class Prober(threading.Thread):
    """Another process's allowed lookup, every 20 ms, while something else
    runs: every answer must be NOERROR with the name's address. Latency is
    reported, not judged."""

    def __init__(self, name, expect):
        super().__init__(daemon=True)
        self.name, self.expect = name, expect
        self.stop_ = threading.Event()
        self.latencies, self.bad = [], []

    def run(self):
        while not self.stop_.is_set():
            rcode, addrs, secs = query_udp(self.name, timeout=2.0)
            if rcode != 0 or addrs != [self.expect]:
                self.bad.append((rcode, addrs))
            else:
                self.latencies.append(secs)
            self.stop_.wait(0.02)

    def finish(self, what):
        self.stop_.set()
        self.join()
        lat = sorted(self.latencies)
        if lat:
            pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
            print(f"   {what}: {len(lat)} allowed lookups answered, p50 {pct(0.5):.2f} ms, "
                  f"p99 {pct(0.99):.2f} ms, max {lat[-1] * 1000:.2f} ms (reported, not judged)", flush=True)
        check(lat and not self.bad,
              f"{what}: every allowed lookup from another process answered with its address "
              f"({len(lat)} answered, {len(self.bad)} not: {self.bad[:3]})")


class Sampler(threading.Thread):
    """dnsguard's descriptors and resident memory, every 20 ms: the peaks."""

    def __init__(self, world):
        super().__init__(daemon=True)
        self.world = world
        self.stop_ = threading.Event()
        self.max_fds = self.max_rss = 0

    def run(self):
        while not self.stop_.is_set():
            try:
                self.max_fds = max(self.max_fds, self.world.fds())
                self.max_rss = max(self.max_rss, self.world.rss_kib())
            except OSError:
                pass
            self.stop_.wait(0.02)

    def finish(self):
        self.stop_.set()
        self.join()
        return self.max_fds, self.max_rss


def http_through_gate(addr, host="a.load.test"):
    """One request through the gate: the response's status line, or why not."""
    try:
        with socket.create_connection((addr, 80), timeout=5) as s:
            s.sendall(f"GET /bytes/5 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            data = s.recv(100)
            return data.split(b"\r\n", 1)[0].decode() if data else "closed"
    except OSError as e:
        return e.__class__.__name__


def allowed_address(world, name="a.load.test"):
    rcode, addrs, _ = query_udp(name)
    check(rcode == 0 and len(addrs) == 1 and addrs[0].startswith("198.51.100."),
          f"control: {name} resolves through dnsguard ({rcode}, {addrs})")
    return addrs[0]


def record_totals(world):
    r = world.record()
    return r.get("denied_total"), r.get("gate_refused_total")


# ---------------------------------------------------------------- cases

def case_floods(world):
    world.start_dnsguard()
    addr = allowed_address(world)
    sampler = Sampler(world)
    sampler.start()

    # Positive control: the same checks with no flood.
    check(http_through_gate(addr) == "HTTP/1.1 200 OK", "control: HTTP through the gate works")
    p = Prober("a.load.test", addr)
    p.start()
    time.sleep(1.5)
    p.finish("no flood")
    check(poll(lambda: record_totals(world) == (0, 0), 3) , f"control: the record counts nothing yet {record_totals(world)}")

    # 1. A flood of random names nobody allowed: answered in the cage, counted.
    n = 30000
    p = Prober("a.load.test", addr)
    p.start()
    r = world.bench_json("query", "--server", "127.0.0.1:53", "--generate", str(n), "--zone", "flood.test",
                         "--outstanding", "64", "--count", str(n), "--timeout-ms", "3000", "--json")
    p.finish("denied-name flood")
    print(f"   denied flood: {r['answered']} answered, {r['lost']} lost, {r['qps']:.0f} qps", flush=True)
    check(r["sent"] == n and r["lost"] == 0 and r["rcodes"]["nxdomain"] == n,
          f"the {n} denied names were all answered NXDOMAIN ({r['rcodes']}, lost {r['lost']})")
    check(poll(lambda: world.record().get("denied_total") == n, 3),
          f"the record's denied_total is exactly {n} (got {world.record().get('denied_total')})")
    d = world.record()
    check(d["denied_unlisted"] == n - len(d["denied"]) and sum(e["count"] for e in d["denied"]) + d["denied_unlisted"] == n,
          f"…listed ({len(d['denied'])}) plus unlisted ({d['denied_unlisted']}) add up to it")

    # 2. A flood of allowed names, each new (the miss path: upstream, set, binding).
    m = 20000
    p = Prober("a.load.test", addr)
    p.start()
    r = world.bench_json("query", "--server", "127.0.0.1:53", "--generate", str(m), "--zone", "load.test",
                         "--outstanding", "64", "--count", str(m), "--timeout-ms", "3000", "--json")
    p.finish("allowed-name flood")
    print(f"   allowed flood: {r['answered']} answered, {r['lost']} lost, {r['qps']:.0f} qps", flush=True)
    check(r["lost"] == 0 and r["rcodes"]["noerror"] == m, f"the {m} allowed names were all answered ({r['rcodes']})")
    time.sleep(1.2)  # one rewrite of the record
    check(world.record().get("denied_total") == n, "…and the record still counts only the denied flood")

    # 3. More gate connections at once than the gate's cap, held open.
    hold = GATE_CAP + 266
    p = Prober("a.load.test", addr)
    p.start()
    hold_out = os.path.join(world.dir, "hold.out")
    holder = world.spawn(world.as_agent(world.bench, "http", "--target", f"{addr}:80", "--host", "a.load.test",
                                        "--hold", str(hold), "--hold-seconds", "3", "--label", "hold"),
                         stdout=open(hold_out, "w"))
    check(poll(lambda: "holding" in open(hold_out).read(), 60), "the agent holds its gate connections")
    # The host's `cagent allow/deny/ps` reach dnsguard through the control
    # socket: descriptors are set aside for it, so it answers meanwhile.
    t0 = time.monotonic()
    ctl = subprocess.run([world.dnsguard, "--control", os.path.join(world.log_dir, "control", "dnsguard.sock"), "list"],
                         capture_output=True, text=True, timeout=30)
    print(f"   control request with the gate full: {(time.monotonic() - t0) * 1000:.1f} ms (reported, not judged)",
          flush=True)
    check(ctl.returncode == 0 and '"ok":true' in ctl.stdout,
          f"the control socket answers with the gate full ({ctl.returncode}: {ctl.stdout.strip()[:100]} {ctl.stderr.strip()[:100]})")
    holder.wait(timeout=60)
    lines = [l for l in open(hold_out).read().splitlines() if l.startswith("{")]
    r = json.loads(lines[-1])
    p.finish(f"{hold} gate connections held")
    print(f"   gate: {r['held']} held, {r['failures']} refused (cap {GATE_CAP})", flush=True)
    check(r["held"] == GATE_CAP and r["failures"] == hold - GATE_CAP,
          f"the gate admitted its cap ({GATE_CAP}) and refused the other {hold - GATE_CAP} at once "
          f"(held {r['held']}, refused {r['failures']})")
    check(poll(lambda: world.record().get("gate_refused_total") == r["failures"], 3),
          f"the record's gate_refused_total is exactly the {r['failures']} refused "
          f"(got {world.record().get('gate_refused_total')})")
    reasons = {e["reason"] for e in world.record()["gate_refused"]}
    check(reasons == {"too many connections at once"}, f"…each recorded with its reason ({reasons})")

    max_fds, max_rss = sampler.finish()
    print(f"   peaks: {max_fds} descriptors (limit {NOFILE}), {max_rss / 1024:.1f} MiB resident", flush=True)
    check(max_fds < NOFILE, f"dnsguard's descriptors stayed under the limit (peak {max_fds} < {NOFILE})")

    # After the floods: everything works, the totals stay.
    check(poll(lambda: http_through_gate(addr) == "HTTP/1.1 200 OK", 5), "after the floods: HTTP through the gate works")
    p = Prober("a.load.test", addr)
    p.start()
    time.sleep(1.0)
    p.finish("after the floods")
    rcode, addrs, _ = query_udp("after-the-flood.load.test")
    check(rcode == 0 and addrs, "after the floods: a new allowed name resolves")
    time.sleep(1.2)
    check(record_totals(world) == (n, hold - GATE_CAP), f"…and the record's totals are unchanged {record_totals(world)}")
    check(world.budget == BUDGET, f"dnsguard logged the descriptor budget the caps came from ({world.budget})")


HOLDER = r"""
import socket, sys, time
n, addr, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
held = []
for _ in range(n):
    try:
        held.append(socket.create_connection((addr, 80), timeout=2))  # and silent: no first flight
    except OSError:
        pass
open(ready, "w").write(str(len(held)))
time.sleep(120)
"""


def case_emfile(world):
    world.start_dnsguard()
    addr = allowed_address(world)
    check(http_through_gate(addr) == "HTTP/1.1 200 OK", "control: HTTP through the gate works")
    rcode, _, _ = query_udp("before.denied.test")
    check(rcode == 3, "control: a denied name is answered NXDOMAIN")
    check(poll(lambda: world.record().get("denied_total") == 1, 3), "control: …and counted in the record")
    cpu0, t0 = world.cpu_seconds(), time.monotonic()
    time.sleep(2)
    idle_cpu = (world.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    print(f"   idle: {idle_cpu * 100:.1f} % of a CPU", flush=True)

    # The fault: fewer descriptors than dnsguard planned with, then silent
    # gate connections (each holds one while its first flight is awaited).
    low = world.fds() + 16
    world.set_soft_limit(low)
    script = os.path.join(world.dir, "holder.py")
    with open(script, "w") as f:
        f.write(HOLDER)
    os.chmod(script, 0o644)
    ready = os.path.join(world.dir, "holder.ready")
    os.chmod(world.dir, 0o777)  # the agent's uid writes its ready file there
    # /usr/bin/python3: the agent's uid may not reach this interpreter's home.
    holder = world.spawn(world.as_agent("/usr/bin/python3", script, "100", addr, ready))
    check(poll(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, 10), "the agent holds 100 silent gate connections")
    check(poll(lambda: world.fds() >= low, 5),
          f"dnsguard holds every descriptor the lowered limit allows ({world.fds()} of {low}): accept() fails")
    # DNS-over-TCP clients wait in that listener's backlog too.
    tcp_waiting = [socket.create_connection(("127.0.0.1", 53), timeout=5) for _ in range(20)]
    sampler = Sampler(world)
    sampler.start()
    # No spin: dnsguard's CPU time while every accept() would fail (the
    # backlog still holds most of the 100 connections).
    cpu0, t0 = world.cpu_seconds(), time.monotonic()
    time.sleep(3)
    busy = (world.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    print(f"   at EMFILE: {busy * 100:.1f} % of a CPU over 3 s (idle was {idle_cpu * 100:.1f} %)", flush=True)
    check(busy < 0.10, f"dnsguard does not spin on the failing accept() ({busy * 100:.1f} % of a CPU)")
    check(world.log().count("gate: cannot accept") == 1 and world.log().count("DNS over TCP: cannot accept") == 1,
          "…and says so in its log once per listener (the gate's, DNS over TCP), not per try")
    # DNS and the record keep working meanwhile.
    p = Prober("a.load.test", addr)
    p.start()
    time.sleep(0.5)
    p.finish("at EMFILE")
    rcode, _, _ = query_udp("during.denied.test")
    check(rcode == 3, "at EMFILE: a denied name is answered")
    check(poll(lambda: world.record().get("denied_total") == 2, 3),
          f"at EMFILE: the decision record is still written (denied_total {world.record().get('denied_total')}, want 2)")
    max_fds, _ = sampler.finish()
    check(max_fds <= low, f"descriptors stayed within the lowered limit (peak {max_fds}, limit {low})")

    # The limit back, the connections gone: everything works again.
    world.set_soft_limit(NOFILE)
    holder.kill()
    holder.wait()
    for s in tcp_waiting:
        s.close()
    check(poll(lambda: "gate: accepting again" in world.log(), 5), "after the fault: the gate accepts again (logged)")
    rcode, addrs = query_tcp("after-emfile-tcp.load.test")
    check(rcode == 0 and addrs, "after the fault: a DNS-over-TCP query is answered")
    check(poll(lambda: http_through_gate(addr) == "HTTP/1.1 200 OK", 10), "after the fault: HTTP through the gate works")
    rcode, addrs, _ = query_udp("after-emfile.load.test")
    check(rcode == 0 and addrs, "after the fault: a new allowed name resolves (upstream sockets open again)")


def case_handshakes(world):
    # 8192 descriptors: the gate's cap (676) is above its cap on handshakes
    # at once (512), which bounds the memory of hellos being read.
    world.start_dnsguard(nofile=8192)
    addr = allowed_address(world)
    check(http_through_gate(addr) == "HTTP/1.1 200 OK", "control: HTTP through the gate works")
    script = os.path.join(world.dir, "holder.py")
    with open(script, "w") as f:
        f.write(HOLDER)
    os.chmod(script, 0o644)
    ready = os.path.join(world.dir, "holder.ready")
    os.chmod(world.dir, 0o777)  # the agent's uid writes its ready file there
    holder = world.spawn(world.as_agent("/usr/bin/python3", script, "600", addr, ready))
    check(poll(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, 20), "the agent opens 600 silent gate connections")
    refused = lambda: sum(e["count"] for e in world.record().get("gate_refused", [])
                          if e["reason"] == "too many handshakes at once")
    check(poll(lambda: refused() == 600 - 512, 5),
          f"512 wait for their hellos, the other 88 are refused at once and recorded ({refused()})")
    check(http_through_gate(addr) in ("ConnectionResetError", "closed"),
          "meanwhile a new connection is refused too (the agent's own)")
    check(poll(lambda: refused() == 600 - 512 + 1, 3), f"…and recorded ({refused()})")
    holder.kill()
    holder.wait()
    check(poll(lambda: http_through_gate(addr) == "HTTP/1.1 200 OK", 15),
          "once the silent ones are gone, HTTP through the gate works again")


def case_slow_tcp(world):
    world.start_dnsguard()
    rcode, addrs = query_tcp("a.load.test")
    check(rcode == 0 and addrs, f"control: a DNS-over-TCP query is answered ({rcode}, {addrs})")
    rcode, addrs = query_tcp("b.load.test", split=0.5)
    check(rcode == 0 and addrs, "control: …also one sent in two segments half a second apart")
    # More slow clients than slots: each sends the first byte of a length
    # prefix and nothing more.
    slow = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", 53), timeout=5)
        s.sendall(b"\x00")
        slow.append(s)
    started = time.monotonic()
    time.sleep(0.3)
    rcode, addrs = query_tcp("c.load.test")
    check(rcode == 0 and addrs, f"with {len(slow)} slow clients on {TCP_SLOTS} slots, a new client is answered")

    def closed(s):
        s.settimeout(0.01)
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True
    # Every slow one is closed by the time the per-query deadline (2 s) has
    # passed twice; the idle timeout (10 s) would still hold them.
    gone = poll(lambda: all(closed(s) for s in slow), 4.5, interval=0.1)
    waited = time.monotonic() - started
    left = sum(not closed(s) for s in slow)
    check(gone, f"the trickling clients are closed at the query deadline ({left} of {len(slow)} open after {waited:.1f} s)")
    for s in slow:
        s.close()
    os.kill(world.pid, signal.SIGUSR1)
    poll(lambda: "tcp_reclaimed=" in world.log(), 3)
    m = re.findall(r"tcp_reclaimed=(\d+)", world.log())
    print(f"   slots taken back: {m[-1] if m else '?'}", flush=True)
    rcode, addrs = query_tcp("d.load.test")
    check(rcode == 0 and addrs, "after the slow clients: a DNS-over-TCP query is answered")


def case_relay_idle(world):
    world.start_dnsguard(env={"CAGENT_GATE_IDLE_TIMEOUT": "3"})
    addr = allowed_address(world)

    def held(talk):
        s = socket.create_connection((addr, 80), timeout=5)
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: a.load.test\r\n\r\n")
        data = b""
        while not data.endswith(b"x"):
            chunk = s.recv(100)
            if not chunk:
                raise Failure("the held connection closed early")
            data += chunk
        return s
    idle = held(False)
    busy = held(True)
    t0 = time.monotonic()
    idle_end = None
    busy_ok = True
    # The busy one sends a byte every half second (the server reads and
    # drops it); the idle one sends nothing.
    while time.monotonic() - t0 < 9:
        try:
            busy.sendall(b".")
        except OSError:
            busy_ok = False
            break
        if idle_end is None:
            idle.settimeout(0.01)
            try:
                if idle.recv(1) == b"":
                    idle_end = time.monotonic() - t0
            except socket.timeout:
                pass
            except OSError:
                idle_end = time.monotonic() - t0
        if idle_end is not None and time.monotonic() - t0 > idle_end + 2:
            break
        time.sleep(0.5)
    print(f"   idle relay ended after {idle_end if idle_end is None else round(idle_end, 1)} s (timeout 3 s)", flush=True)
    check(idle_end is not None, "a relay silent for the idle timeout is ended")
    check(busy_ok, "control: a relay with traffic through the same time stays open")
    busy.settimeout(2)
    try:
        busy.sendall(b".")
        still = True
    except OSError:
        still = False
    check(still, "control: …and still carries bytes afterwards")
    check(poll(lambda: "relays silent for 3 s" in world.log(), 3), "the log names the idle relays it ended")
    check(http_through_gate(addr) == "HTTP/1.1 200 OK", "a new connection through the gate works")


CASES = {"floods": case_floods, "emfile": case_emfile, "handshakes": case_handshakes, "slow_tcp": case_slow_tcp,
         "relay_idle": case_relay_idle}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dnsguard", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    if os.geteuid() != 0:
        skip("needs root (network namespaces, nftables, setpriv, prlimit)")
    for tool in ("ip", "setpriv", "prlimit"):
        if shutil.which(tool) is None:
            skip(f"missing tool: {tool}")
    for binary in (args.dnsguard, args.bench):
        if not os.access(binary, os.X_OK):
            skip(f"not built: {binary}")
    try:
        with World(args) as world:
            CASES[args.case](world)
    except Failure as e:
        print(f"not ok - {e}")
        print(f"FAIL {args.case}")
        return 1
    print(f"ok {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
