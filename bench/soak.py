#!/usr/bin/env python3
"""bench/soak.py — the parts of the soak (bench/soak.sh runs them; stdlib only).

    soak.py plan    --dir DIR                 the names, the fake upstream's zone, the allowlist
    soak.py client  --dir DIR --seconds S …   the agent: steady connections to rotating names
    soak.py probe   --dir DIR --ca CA         the controls: one allowed connection, two refused ones
    soak.py sample  --pid PID --dir DIR …     dnsguard's RSS, fds and counters every few seconds → CSV
    soak.py report  --csv CSV …               summary, verdict, gnuplot script, RESULTS.md section

The world (bench/soak.sh): every name is answered by tests/tools/fake_dns.py
with a short TTL (5, 7 or 10 s) and one address per answer, rotating through
the name's four addresses; the 64 addresses of the pool are shared between
names (as on a CDN), and one HTTPS (SNI) + HTTP (Host) server answers on all
of them with "site <Host>".
"""
import argparse
import csv
import json
import os
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

N_EXACT = 24          # e00.exact.test …: listed one by one, so dnsguard refreshes them every 60 s
N_WILD = 24           # w00.wild.test …: allowed through "*.wild.test", never refreshed
POOL = 64             # 198.51.100.10 … .73
PER_NAME = 4          # addresses each name rotates through
TTLS = (5, 7, 10)
REFUSED_PROBE_ADDR = "198.51.100.250"  # outside the pool: no name ever resolves to it
BLOCKED_NAME = "x.blocked.test"        # not allowed: the gate must refuse it as SNI


def names():
    return [f"e{i:02d}.exact.test" for i in range(N_EXACT)] + [f"w{i:02d}.wild.test" for i in range(N_WILD)]


def pool_addr(j, k):
    # Stride 17 over a pool of 64: each name's four addresses are spread out,
    # and every address serves several names.
    return f"198.51.100.{10 + (j * 5 + k * 17) % POOL}"


def cmd_plan(args):
    zone = {}
    for j, name in enumerate(names()):
        zone[name] = {"ttl": TTLS[j % len(TTLS)], "A": [pool_addr(j, k) for k in range(PER_NAME)], "rotate": True}
    with open(os.path.join(args.dir, "zone.json"), "w") as f:
        json.dump({"names": zone}, f, indent=1)
    with open(os.path.join(args.dir, "names.txt"), "w") as f:
        f.write("\n".join(names()) + "\n")
    allow = [n for n in names() if n.endswith(".exact.test")] + ["*.wild.test"]
    print("allow = [" + ", ".join(json.dumps(a) for a in allow) + "]")
    return 0


# --- the client's DNS: a stub that sees the TTLs -------------------------------------


class LookupFailed(Exception):
    pass


def build_query(name):
    qid = random.getrandbits(16)
    q = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return qid, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def skip_name(buf, pos):
    while True:
        n = buf[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + n


def parse_response(buf, qid):
    """(rcode, [(address, ttl)]) of the A records; None when it is not the answer to qid."""
    if len(buf) < 12:
        return None
    rid, flags, qd, an = struct.unpack("!HHHH", buf[:8])
    if rid != qid or not flags & 0x8000:
        return None
    try:
        pos = 12
        for _ in range(qd):
            pos = skip_name(buf, pos) + 4
        out = []
        for _ in range(an):
            pos = skip_name(buf, pos)
            rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", buf[pos:pos + 10])
            pos += 10
            if rtype == 1 and rdlen == 4:
                out.append((socket.inet_ntoa(buf[pos:pos + 4]), ttl))
            pos += rdlen
    except (IndexError, struct.error):
        raise LookupFailed("malformed answer")
    return flags & 0xF, out


def lookup(name, server=("127.0.0.1", 53), timeout=3.0):
    """[(address, ttl)], or LookupFailed naming why."""
    qid, query = build_query(name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(server)
        s.send(query)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LookupFailed("timeout")
            s.settimeout(left)
            try:
                buf = s.recv(4096)
            except socket.timeout:
                raise LookupFailed("timeout")
            except OSError as e:
                raise LookupFailed(f"recv: {e}")
            parsed = parse_response(buf, qid)
            if parsed is None:
                continue
            rcode, records = parsed
            if rcode != 0:
                raise LookupFailed(f"rcode {rcode}")
            if not records:
                raise LookupFailed("no address")
            return records


# --- the client's connections ---------------------------------------------------------


class BadReply(Exception):
    pass


def read_response(s):
    """(status line, body) of one HTTP/1.1 response with Content-Length."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise BadReply("closed before the response" if not buf else "closed inside the headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise BadReply("closed inside the body")
        body += chunk
    return lines[0].decode(errors="replace"), body[:length]


def request(s, name, close):
    close_header = "Connection: close\r\n" if close else ""
    s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\n{close_header}\r\n".encode())
    status, body = read_response(s)
    if not status.startswith("HTTP/1.1 200") or body != f"site {name}\n".encode():
        raise BadReply(f"wrong reply: {status!r} {body[:60]!r}")


def open_conn(addr, name, tls, ctx, timeout):
    s = socket.create_connection((addr, 443 if tls else 80), timeout=timeout)
    if tls:
        try:
            s = ctx.wrap_socket(s, server_hostname=name)  # SNI = name, certificate checked against it
        except BaseException:
            s.close()
            raise
    return s


def classify(e):
    """The kind of a failed connection, as the agent would see it."""
    if isinstance(e, BadReply):
        return "bad_reply"
    if isinstance(e, ssl.SSLCertVerificationError):
        return "tls_verify"
    if isinstance(e, ConnectionRefusedError):
        return "refused"       # RST to the SYN, or an ICMP port unreachable
    if isinstance(e, PermissionError):
        return "eperm"         # a local reject in the output path
    if isinstance(e, (ConnectionResetError, BrokenPipeError, ssl.SSLError)):
        return "reset"         # the gate resets what it refuses
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(e, OSError):
        return "unreachable" if e.errno in (113, 101) else f"oserror_{e.errno}"
    return type(e).__name__


def tls_context(ca):
    return ssl.create_default_context(cafile=ca)  # verifies the certificate against the name (SNI)


class Client:
    def __init__(self, args):
        self.args = args
        self.names = open(os.path.join(args.dir, "names.txt")).read().split()
        self.ctx = tls_context(args.ca)
        self.cache = {}   # name → (address, received at, TTL, usable until): the caching mode's answers
        self.stats = {"connections": 0, "ok": 0, "failed": 0, "lookups": 0, "lookups_ok": 0, "lookup_failed": 0,
                      "persistent_requests": 0, "persistent_failed": 0, "by_kind": {}, "done": False}
        self.failures = open(os.path.join(args.dir, "failures.jsonl"), "a", buffering=1)
        self.t0 = time.monotonic()
        self.last_status = 0.0

    def fail(self, what, name, addr, e, **extra):
        kind = classify(e) if isinstance(e, BaseException) else e
        self.stats["by_kind"][kind] = self.stats["by_kind"].get(kind, 0) + 1
        entry = {"t": round(time.monotonic() - self.t0, 3), "wall": time.time(), "what": what, "name": name,
                 "addr": addr, "kind": kind, "detail": str(e)[:200]}
        entry.update(extra)
        self.failures.write(json.dumps(entry) + "\n")

    def resolve(self, name, keep=False):
        self.stats["lookups"] += 1
        try:
            records = lookup(name)
        except LookupFailed as e:
            self.stats["lookup_failed"] += 1
            self.fail("lookup", name, "", f"dns_{str(e).split(':')[0].replace(' ', '_')}")
            return None
        self.stats["lookups_ok"] += 1
        addr, ttl = records[0]
        now = time.monotonic()
        if keep:
            # The caching mode's own answers (fresh lookups do not renew
            # them): used until the TTL runs out, plus --overstay, the
            # negative control — a client that keeps answers too long.
            self.cache[name] = (addr, now, ttl, now + ttl + self.args.overstay)
        return addr, now, ttl

    def one_connection(self, i):
        n = len(self.names)
        name = self.names[i % n]
        cycle = i // n
        caching = cycle % 2 == 1            # every other round through the names reuses answers
        tls = (i + cycle) % 2 == 0          # each name alternates TLS and HTTP from round to round
        cached = self.cache.get(name)
        now = time.monotonic()
        if caching and cached and now < cached[3]:
            addr, received, ttl = cached[0], cached[1], cached[2]
        else:
            got = self.resolve(name, keep=caching)
            if got is None:
                return
            addr, received, ttl = got
        self.stats["connections"] += 1
        age = round(time.monotonic() - received, 3)
        try:
            s = open_conn(addr, name, tls, self.ctx, self.args.timeout)
            with s:
                request(s, name, close=True)
            self.stats["ok"] += 1
        except Exception as e:  # noqa: BLE001 — every failure is counted and kept
            self.stats["failed"] += 1
            self.fail("connect", name, addr, e, tls=tls, caching=caching, age=age, ttl=ttl)

    def persistent_open(self, p):
        got = self.resolve(p["name"])
        if got is None:
            return
        try:
            p["sock"] = open_conn(got[0], p["name"], p["tls"], self.ctx, self.args.timeout)
            p["addr"], p["opened"] = got[0], time.monotonic()
        except Exception as e:  # noqa: BLE001
            self.stats["persistent_failed"] += 1
            self.fail("persistent_open", p["name"], got[0], e, tls=p["tls"])

    def persistent_step(self, p):
        """One request on a long-lived connection; (re)opens it first when needed.
        A keep-alive client sends its first request right after connecting;
        --first-request-after S makes it wait (a pre-connecting client)."""
        now = time.monotonic()
        p["due"] = now + self.args.persistent_every
        if p["sock"] is None:
            self.persistent_open(p)
            if p["sock"] is None:
                return
            if self.args.first_request_after > 0:
                p["due"] = now + self.args.first_request_after
                return
        self.stats["persistent_requests"] += 1
        try:
            request(p["sock"], p["name"], close=False)
        except Exception as e:  # noqa: BLE001
            self.stats["persistent_failed"] += 1
            self.fail("persistent", p["name"], p["addr"], e, tls=p["tls"],
                      open_for=round(time.monotonic() - p["opened"], 1))
            p["sock"].close()
            p["sock"] = None

    def write_status(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_status < 1:
            return
        self.last_status = now
        path = os.path.join(self.args.dir, "status.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.stats, f)
        os.replace(path + ".tmp", path)

    def run(self):
        period = 1.0 / self.args.rate
        end = self.t0 + self.args.seconds
        # Long-lived connections through the gate: opened at the start, one
        # request every --persistent-every seconds for the whole run, while
        # their addresses rotate away and leave the sets.
        persistent = [{"name": self.names[k], "tls": k % 2 == 0, "sock": None, "addr": "", "opened": 0.0, "due": 0.0}
                      for k in range(self.args.persistent)]
        for p in persistent:
            self.persistent_step(p)
        i = 0
        next_conn = self.t0
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        while not stop:
            now = time.monotonic()
            if now >= end:
                break
            due = min([next_conn] + [p["due"] for p in persistent])
            if due > now:
                time.sleep(min(due - now, 1.0))
                self.write_status()
                continue
            for p in persistent:
                if p["due"] <= now:
                    self.persistent_step(p)
            if next_conn <= now:
                self.one_connection(i)
                i += 1
                # A steady rate; after a stall (a timeout) carry on from now, no burst.
                next_conn = max(next_conn + period, time.monotonic() - period)
            self.write_status()
        for p in persistent:
            if p["sock"] is not None:
                p["sock"].close()
        self.stats["done"] = True
        self.write_status(force=True)
        return 0


def cmd_client(args):
    return Client(args).run()


def cmd_probe(args):
    """The controls: refusals are seen (client side and in the decision record),
    and the allowed path works in the same setup."""
    ctx = tls_context(args.ca)
    name = names()[0]
    results = {}
    try:
        addr = lookup(name)[0][0]
    except LookupFailed as e:
        print(f"probe: {name} does not resolve: {e}", file=sys.stderr)
        return 1
    for label, target, sni, tls in (("allowed", addr, name, True),
                                    ("unresolved_address", REFUSED_PROBE_ADDR, name, False),
                                    ("blocked_sni", addr, BLOCKED_NAME, True)):
        try:
            ctx_used = ctx
            if label == "blocked_sni":
                ctx_used = ssl.create_default_context(cafile=args.ca)
                ctx_used.check_hostname = False  # the gate must refuse before any certificate matters
            s = open_conn(target, sni, tls, ctx_used, 5)
            with s:
                request(s, sni, close=True)
            results[label] = "ok"
        except Exception as e:  # noqa: BLE001
            results[label] = classify(e)
    try:
        lookup(BLOCKED_NAME)
        results["blocked_lookup"] = "answered"
    except LookupFailed as e:
        results["blocked_lookup"] = str(e)
    print(json.dumps(results))
    good = (results["allowed"] == "ok" and results["unresolved_address"] != "ok" and results["blocked_sni"] != "ok"
            and results["blocked_lookup"] == "rcode 3")
    return 0 if good else 1


# --- the sampler (root) -----------------------------------------------------------------

FIELDS = ["t_s", "rss_kib", "fds", "cpu_s", "connections", "ok", "failed", "lookups", "lookups_ok", "lookup_failed",
          "persistent_requests", "persistent_failed", "gate_refused_record", "firewall_refused_record",
          "denied_record", "dg_queries", "dg_cache_hits", "dg_inserts", "dg_refreshes", "dg_gate_admitted",
          "dg_gate_refused", "dg_bindings", "set4_elements", "journal_bytes"]


def proc_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def proc_cpu_s(pid):
    # utime and stime: fields 14 and 15, after the parenthesized command.
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Counters:
    """dnsguard's counters line (SIGUSR1 makes it write one to its log)."""

    def __init__(self, pid, log):
        self.pid, self.log, self.offset, self.last = pid, log, 0, {}

    def read(self):
        try:
            before = os.path.getsize(self.log)
            os.kill(self.pid, signal.SIGUSR1)
        except OSError:
            return self.last
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if os.path.getsize(self.log) > before:
                with open(self.log, "rb") as f:
                    f.seek(self.offset)
                    text = f.read().decode(errors="replace")
                    self.offset = f.tell()
                lines = [ln for ln in text.splitlines() if " counters " in ln]
                if lines:
                    self.last = dict(kv.split("=", 1) for kv in lines[-1].split(" counters ", 1)[1].split()
                                     if "=" in kv)
                    return self.last
            time.sleep(0.02)
        return self.last


def set_elements(cage, set_name):
    try:
        out = subprocess.run(["ip", "netns", "exec", cage, "nft", "-j", "list", "set", "inet", "cagent", set_name],
                             capture_output=True, text=True, timeout=10).stdout
        for item in json.loads(out)["nftables"]:
            if "set" in item:
                return len(item["set"].get("elem", []))
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        pass
    return -1


def cmd_sample(args):
    counters = Counters(args.pid, args.log)
    record_path = args.decisions
    base = read_json(record_path) or {}
    t0 = time.monotonic()
    deadline = t0 + args.max_seconds
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        while True:
            status = read_json(os.path.join(args.dir, "status.json")) or {}
            record = read_json(record_path) or {}
            c = counters.read()
            try:
                rss, fds, cpu = proc_rss_kib(args.pid), len(os.listdir(f"/proc/{args.pid}/fd")), proc_cpu_s(args.pid)
            except OSError:
                print("soak: dnsguard is gone", file=sys.stderr)
                return 1
            try:
                journal = os.path.getsize(args.journal)
            except OSError:
                journal = 0

            def grew(key):  # the record's growth since the controls (soak.py probe)
                return int(record.get(key, 0)) - int(base.get(key, 0))

            row = [round(time.monotonic() - t0, 1), rss, fds, round(cpu, 2)]
            row += [status.get(k, 0) for k in ("connections", "ok", "failed", "lookups", "lookups_ok", "lookup_failed",
                                               "persistent_requests", "persistent_failed")]
            row += [grew("gate_refused_total"), grew("firewall_refused_total"), grew("denied_total")]
            row += [int(c.get(k, 0)) for k in ("queries", "cache_hits", "inserts", "refreshes", "gate_admitted",
                                               "gate_refused", "bindings")]
            row += [set_elements(args.cage, "allow4"), journal]
            w.writerow(row)
            f.flush()
            if status.get("done") or time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, args.interval - (time.monotonic() - t0) % args.interval))
    return 0


# --- the report ---------------------------------------------------------------------------


def load_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [{k: float(v) for k, v in r.items()} for r in rows]


def judge(rows):
    """The verdict and the numbers behind it. Flat = the last window's maximum
    (RSS, fds) is no higher than the first window's (RSS: + 5 %, allocator
    noise); the window is 10 minutes, or a third of a shorter run."""
    end = rows[-1]
    duration = end["t_s"]
    window = min(600.0, duration / 3)
    first = [r for r in rows if r["t_s"] <= window]
    last = [r for r in rows if r["t_s"] >= duration - window]
    v = {"duration_s": duration, "window_s": window, "samples": len(rows)}
    for key in ("rss_kib", "fds", "set4_elements", "dg_bindings"):
        v[key + "_min"] = min(r[key] for r in rows)
        v[key + "_max"] = max(r[key] for r in rows)
        v[key + "_first_max"] = max(r[key] for r in first)
        v[key + "_last_max"] = max(r[key] for r in last)
    for key in ("connections", "ok", "failed", "lookups", "lookups_ok", "lookup_failed", "persistent_requests",
                "persistent_failed",
                "gate_refused_record", "firewall_refused_record", "denied_record", "dg_queries", "dg_cache_hits",
                "dg_inserts", "dg_refreshes", "dg_gate_admitted", "cpu_s", "journal_bytes"):
        v[key] = end[key]
    v["journal_bytes_first"] = rows[0]["journal_bytes"]
    # RSS trend over the second half (least squares), KiB per hour: informative.
    half = [r for r in rows if r["t_s"] >= duration / 2]
    if len(half) >= 3 and duration >= 1200:
        mt = sum(r["t_s"] for r in half) / len(half)
        mr = sum(r["rss_kib"] for r in half) / len(half)
        den = sum((r["t_s"] - mt) ** 2 for r in half)
        v["rss_slope_kib_h"] = (sum((r["t_s"] - mt) * (r["rss_kib"] - mr) for r in half) / den * 3600) if den else 0.0
    refusals = v["failed"] + v["lookup_failed"] + v["persistent_failed"] + v["gate_refused_record"] + \
        v["firewall_refused_record"]
    checks = [
        ("connections were made", v["connections"] > 0 and v["persistent_requests"] > 0,
         f"{v['connections']:.0f} + {v['persistent_requests']:.0f} on long-lived connections"),
        ("zero refused or failed connections and lookups of allowed names", refusals == 0,
         f"client: {v['failed']:.0f} connections, {v['lookup_failed']:.0f} lookups, {v['persistent_failed']:.0f} "
         f"long-lived; record: {v['gate_refused_record']:.0f} gate, {v['firewall_refused_record']:.0f} firewall"),
        ("RSS flat (last-window max ≤ first-window max + 5 %)",
         v["rss_kib_last_max"] <= v["rss_kib_first_max"] * 1.05,
         f"{v['rss_kib_first_max'] / 1024:.2f} → {v['rss_kib_last_max'] / 1024:.2f} MiB"),
        ("fds flat (last-window max ≤ first-window max)", v["fds_last_max"] <= v["fds_first_max"],
         f"{v['fds_first_max']:.0f} → {v['fds_last_max']:.0f}"),
    ]
    return v, checks


def gnuplot_script(csv_path, png, title, refusals_max):
    return f"""set terminal pngcairo size 1000,900 noenhanced
set output '{png}'
set datafile separator ','
set key autotitle columnhead
set multiplot layout 3,1 title '{title}'
set grid
set xlabel 'minutes'
set xrange [0:*]
set key bottom right
set ylabel 'dnsguard RSS (MiB)'
set yrange [0:*]
plot '{csv_path}' using ($1/60):(column("rss_kib")/1024) with lines lw 2 title 'VmRSS'
set ylabel 'dnsguard open fds'
plot '{csv_path}' using ($1/60):(column("fds")) with lines lw 2 title 'fds in /proc/PID/fd'
set key top left
set ylabel 'refusals (cumulative)'
set yrange [0:{max(5, refusals_max * 1.1):g}]
plot '{csv_path}' using ($1/60):(column("failed")+column("lookup_failed")+column("persistent_failed")) \\
       with lines lw 2 title 'client: failed connections + lookups', \\
     '{csv_path}' using ($1/60):(column("gate_refused_record")) with lines lw 2 title 'decision record: gate refusals', \\
     '{csv_path}' using ($1/60):(column("firewall_refused_record")) with lines lw 2 \\
       title 'decision record: firewall refusals'
unset multiplot
"""


def span(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def section(v, checks, args, png_rel):
    ok = all(c[1] for c in checks)
    lines = [f"## Soak: a compressed long session ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"Reproduce: `{args.command}` (as root, after building; bench/README.md says what it does).",
             "",
             f"{N_EXACT + N_WILD} allowed names ({N_EXACT} exact, refreshed every 60 s; {N_WILD} under a wildcard), "
             f"upstream TTLs {'/'.join(map(str, TTLS))} s with one address per answer, rotating through "
             f"{PER_NAME} per name out of {POOL} shared ones; `ttl.min = 5`, the gate on. The client "
             f"({args.rate:g} connections/s, as uid 4343) alternates TLS (SNI) and HTTP (Host), resolving "
             "before each connection or reusing the answer until its TTL runs out; "
             f"{args.persistent} long-lived connections make a request every {args.persistent_every:g} s "
             "for the whole run. Sampled every "
             f"{args.interval:g} s: {v['samples']:.0f} samples over {v['duration_s'] / 60:.1f} min.",
             "",
             "| | |", "|---|---:|",
             f"| connections (ok / failed) | {v['connections']:.0f} ({v['ok']:.0f} / {v['failed']:.0f}) |",
             f"| requests on long-lived connections (failed) | {v['persistent_requests']:.0f} "
             f"({v['persistent_failed']:.0f}) |",
             f"| client lookups: answered / failed | {v['lookups_ok']:.0f} / {v['lookup_failed']:.0f} |",
             f"| dnsguard: queries / cache hits / set inserts / refresh queries | {v['dg_queries']:.0f} / "
             f"{v['dg_cache_hits']:.0f} / {v['dg_inserts']:.0f} / {v['dg_refreshes']:.0f} |",
             f"| dnsguard: gate admissions | {v['dg_gate_admitted']:.0f} |",
             f"| decision record: gate / firewall refusals during the run | {v['gate_refused_record']:.0f} / "
             f"{v['firewall_refused_record']:.0f} |",
             f"| RSS min / max | {v['rss_kib_min'] / 1024:.2f} / {v['rss_kib_max'] / 1024:.2f} MiB |",
             f"| RSS max, first / last {span(v['window_s'])} | {v['rss_kib_first_max'] / 1024:.2f} / "
             f"{v['rss_kib_last_max'] / 1024:.2f} MiB |",
             f"| RSS trend over the second half (runs ≥ 20 min) | "
             f"{'%+.0f KiB/h' % v['rss_slope_kib_h'] if 'rss_slope_kib_h' in v else '—'} |",
             f"| open fds min / max (first / last window max) | {v['fds_min']:.0f} / {v['fds_max']:.0f} "
             f"({v['fds_first_max']:.0f} / {v['fds_last_max']:.0f}) |",
             f"| `allow4` elements min / max | {v['set4_elements_min']:.0f} / {v['set4_elements_max']:.0f} |",
             f"| gate bindings min / max | {v['dg_bindings_min']:.0f} / {v['dg_bindings_max']:.0f} |",
             f"| binding journal, start → end | {v['journal_bytes_first']:.0f} → {v['journal_bytes']:.0f} bytes |",
             f"| dnsguard CPU time | {v['cpu_s']:.1f} s |",
             "",
             "| acceptance | measured | status |", "|---|---|---|"]
    for text, good, measured in checks:
        lines.append(f"| {text} | {measured} | {'met' if good else '**missed**'} |")
    if args.overstay or args.first_request_after:
        lines += ["", "**A fault run, not the soak:** " + "; ".join(
            ([f"the client kept cached answers {args.overstay:g} s past their TTL (`--overstay`)"]
             if args.overstay else []) +
            ([f"the long-lived connections sent their first request {args.first_request_after:g} s after "
              "connecting (`--first-request-after`)"] if args.first_request_after else [])) + "."]
    kinds = failure_kinds(os.path.join(args.out, "failures.jsonl"))
    if kinds:
        lines += ["", "Failures seen by the client (`failures.jsonl`, one line each with name, address, the "
                  "answer's age and TTL): " + ", ".join(f"{n} × {k}" for k, n in kinds) + "."]
    lines += ["", f"![dnsguard RSS, fds and refusals over the soak]({png_rel})", ""]
    return "\n".join(lines), ok


def failure_kinds(path):
    """[("what: kind", count)] of the client's failures, most frequent first."""
    counts = {}
    try:
        for line in open(path):
            e = json.loads(line)
            key = f"{e['what']}: {e['kind']}"
            counts[key] = counts.get(key, 0) + 1
    except (OSError, ValueError, KeyError):
        return []
    return sorted(counts.items(), key=lambda kv: -kv[1])


def cmd_report(args):
    rows = load_csv(args.csv)
    if len(rows) < 3:
        print(f"soak: {args.csv}: only {len(rows)} samples, nothing to judge", file=sys.stderr)
        return 1
    v, checks = judge(rows)
    png = os.path.join(args.out, "soak.png")
    gp = os.path.join(args.out, "soak.gp")
    with open(gp, "w") as f:
        f.write(gnuplot_script(os.path.abspath(args.csv), os.path.abspath(png),
                               f"dnsguard over a {v['duration_s'] / 60:.0f}-minute soak",
                               max(v["failed"] + v["lookup_failed"] + v["persistent_failed"], v["gate_refused_record"],
                                   v["firewall_refused_record"])))
    if subprocess.run(["gnuplot", gp]).returncode != 0:
        print("soak: gnuplot failed", file=sys.stderr)
        return 1
    os.unlink(gp)
    text, ok = section(v, checks, args, os.path.relpath(png, os.path.dirname(os.path.abspath(args.results))))
    print(text)
    from results_section import replace_section  # installed beside this file (soak.sh)
    replace_section(args.results, "soak.sh", text)
    print(f"soak: {'passed' if ok else 'FAILED'}; written to {args.results} and {png}", file=sys.stderr)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--dir", required=True)
    p = sub.add_parser("client")
    p.add_argument("--dir", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--rate", type=float, default=10)
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--persistent", type=int, default=4)
    p.add_argument("--persistent-every", type=float, default=10)
    p.add_argument("--overstay", type=float, default=0)
    p.add_argument("--first-request-after", type=float, default=0)
    p = sub.add_parser("probe")
    p.add_argument("--dir", required=True)
    p.add_argument("--ca", required=True)
    p = sub.add_parser("sample")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--decisions", required=True)
    p.add_argument("--journal", required=True)
    p.add_argument("--cage", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--interval", type=float, default=5)
    p.add_argument("--max-seconds", type=float, required=True)
    p = sub.add_parser("report")
    p.add_argument("--csv", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--interval", type=float, required=True)
    p.add_argument("--persistent", type=int, required=True)
    p.add_argument("--persistent-every", type=float, required=True)
    p.add_argument("--overstay", type=float, default=0)
    p.add_argument("--first-request-after", type=float, default=0)
    args = ap.parse_args()
    return {"plan": cmd_plan, "client": cmd_client, "probe": cmd_probe, "sample": cmd_sample,
            "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
