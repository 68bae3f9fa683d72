#!/usr/bin/env python3
"""Turns the raw runs of bench/compare.sh into bench/RESULTS.md and a gnuplot
script for bench/latency.png, or checks the connect-after-answer runs.

Input: the scratch directory with one `<label>.json` (cagent-bench query
--json), one `<label>.curve` (percentile curve) per run and the RSS samples
`<resolver>.rss-start` / `<resolver>.rss-10k` (KiB).
"""
import argparse
import json
import math
import os
import platform
import re
import sys
import time

SCENARIOS = [  # label, shown as
    ("direct", "direct to upstream"),
    ("dnsguard-miss", "dnsguard, miss (unique names)"),
    ("dnsguard-hit", "dnsguard, hit (10 hot names)"),
    ("dnsmasq-miss", "dnsmasq --nftset, miss"),
    ("dnsmasq-hit", "dnsmasq --nftset, hit"),
]
LIGHT = [  # one query in flight: latency without queueing
    ("direct-1", "direct to upstream"),
    ("dnsguard-miss-1", "dnsguard, miss"),
    ("dnsguard-hit-1", "dnsguard, hit"),
    ("dnsmasq-miss-1", "dnsmasq --nftset, miss"),
    ("dnsmasq-hit-1", "dnsmasq --nftset, hit"),
]
LIGHT_ONE_CPU = [  # the same, with client, upstream and resolver all on one CPU
    ("direct-1c", "direct to upstream"),
    ("dnsguard-miss-1c", "dnsguard, miss"),
    ("dnsguard-hit-1c", "dnsguard, hit"),
    ("dnsmasq-miss-1c", "dnsmasq --nftset, miss"),
    ("dnsmasq-hit-1c", "dnsmasq --nftset, hit"),
]
CONNECT_RUNS = [("dnsguard-connect", "dnsguard"), ("dnsmasq-connect", "dnsmasq --nftset")]


def load(scratch, label):
    path = os.path.join(scratch, label + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_kib(scratch, name):
    path = os.path.join(scratch, name)
    if not os.path.exists(path):
        return None
    text = open(path).read().strip()
    return int(text) if text.isdigit() else None


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def check_connects(scratch):
    """Exit 1 when dnsguard handed out an address that was not yet admitted."""
    run = load(scratch, "dnsguard-connect")
    if run is None:
        print("compare: no dnsguard connect-after-answer run (dnsguard not built)", file=sys.stderr)
        return 0
    c = run["connect"]
    if c["attempted"] == 0 or c["failed"] != 0 or c["skipped"] != 0:
        print(f"compare: dnsguard connect-after-answer: {c['failed']} of {c['attempted']} connects failed, "
              f"{c['skipped']} skipped ({c})", file=sys.stderr)
        return 1
    print(f"compare: dnsguard connect-after-answer: all {c['attempted']} connects succeeded", file=sys.stderr)
    return 0


def kept_blocks(path):
    """The `<!-- NAME: begin -->` … `<!-- NAME: end -->` sections of an
    existing RESULTS.md, in order: written by other scripts, not ours to drop."""
    try:
        text = open(path).read()
    except OSError:
        return []
    blocks = []
    for m in re.finditer(r"<!-- ([\w.-]+): begin -->.*?<!-- \1: end -->", text, re.S):
        blocks.append(m.group(0))
    return blocks


def fmt(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def write_results(args):
    runs = {label: load(args.scratch, label) for label, _ in SCENARIOS}
    direct = runs.get("direct")
    lines = []
    add = lines.append
    add("# cagent resolution benchmark: results")
    add("")
    add("Reproduce (as root, from the repository root, after building):")
    add("")
    add("    " + args.command)
    add("")
    add(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} CPU(s) "
        f"({cpu_model()}), kernel {platform.release()}. Pinning: {args.cpus}. "
        f"UDP, {args.outstanding} queries in flight, up to {args.count} queries per run "
        "(each run also capped in time). Raw numbers are noisy when other work shares the cores "
        f"(load average at report time: {open('/proc/loadavg').read().split()[0]}).")
    if args.quick == "1":
        add("")
        add("**Quick smoke run** (small counts): the numbers only show that every path works.")
    add("")
    add("## Throughput and latency (ratios to direct)")
    add("")
    add("| scenario | answered | qps | × direct | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | p50 over direct µs | lost |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, title in SCENARIOS:
        r = runs[label]
        if r is None:
            add(f"| {title} | not run | | | | | | | | | |")
            continue
        lat = r["latency_us"]
        ratio = r["qps"] / direct["qps"] if direct and direct["qps"] else None
        added = lat["p50"] - direct["latency_us"]["p50"] if direct and label != "direct" else None
        add(f"| {title} | {r['answered']} | {r['qps']:.0f} | {fmt(ratio, 2)} | {lat['p50']:.1f} | {lat['p90']:.1f} | "
            f"{lat['p99']:.1f} | {lat['p99.9']:.1f} | {lat['max']:.1f} | {fmt(added)} | {r['lost']} |")
    add("")
    add("## Latency at light load (one query in flight)")
    add("")
    add("| scenario | answered | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | p50 over direct µs |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    light = {label: load(args.scratch, label) for label, _ in LIGHT}
    base = light.get("direct-1")
    for label, title in LIGHT:
        r = light[label]
        if r is None:
            add(f"| {title} | not run | | | | | | |")
            continue
        lat = r["latency_us"]
        added = lat["p50"] - base["latency_us"]["p50"] if base and label != "direct-1" else None
        add(f"| {title} | {r['answered']} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | "
            f"{lat['p99.9']:.1f} | {lat['max']:.1f} | {fmt(added)} |")
    add("")
    add("## Light load on one CPU (one query in flight)")
    add("")
    add("Client, upstream and resolver all on CPU 0, for every scenario alike: the work per lookup without "
        "the cross-CPU wake-ups that dominate the table above (each hop wakes an idle vCPU; a resolver adds "
        "two hops to the direct path's two). With one query in flight, time per lookup = 1 / qps. Percentiles "
        "are not shown: on one CPU the woken server often runs before the client's `sendto` returns, so the "
        "client's send timestamp is late and its per-query latencies understate.")
    add("")
    add("| scenario | answered | qps | µs per lookup | over direct µs |")
    add("|---|---:|---:|---:|---:|")
    one = {label: load(args.scratch, label) for label, _ in LIGHT_ONE_CPU}
    base = one.get("direct-1c")
    for label, title in LIGHT_ONE_CPU:
        r = one[label]
        if r is None or not r["qps"]:
            add(f"| {title} | not run | | | |")
            continue
        per = 1e6 / r["qps"]
        added = per - 1e6 / base["qps"] if base and base["qps"] and label != "direct-1c" else None
        add(f"| {title} | {r['answered']} | {r['qps']:.0f} | {per:.1f} | {fmt(added)} |")
    add("")
    add("## Connect right after the answer")
    add("")
    add("Every returned address is connected to (TCP, port 80 of a sink in the world namespace) the moment the "
        "answer arrives; the cage ruleset admits only addresses already in `@allow4`. Anything but *succeeded* "
        "means the client saw the answer before the firewall was open.")
    add("")
    add("| resolver | answered | qps | connects | succeeded | refused | unreachable | timed out | other | skipped |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, title in CONNECT_RUNS:
        r = load(args.scratch, label)
        if r is None:
            add(f"| {title} | not run | | | | | | | | |")
            continue
        c = r["connect"]
        add(f"| {title} | {r['answered']} | {r['qps']:.0f} | {c['attempted']} | {c['succeeded']} | {c['refused']} | "
            f"{c['unreachable']} | {c['timed_out']} | {c['other']} | {c['skipped']} |")
    add("")
    add("## Resident memory")
    add("")
    add("| resolver | RSS at start | RSS with 10 000 cached names |")
    add("|---|---:|---:|")
    rss = {}
    for name, title in (("dnsguard", "dnsguard"), ("dnsmasq", "dnsmasq")):
        start = read_kib(args.scratch, name + ".rss-start")
        full = read_kib(args.scratch, name + ".rss-10k")
        rss[name] = full
        add(f"| {title} | {fmt(start / 1024 if start else None, 1)} MiB | {fmt(full / 1024 if full else None, 1)} MiB |")
    add("")
    add("## Targets")
    add("")
    add("| target | measured | status |")
    add("|---|---|---|")

    def target(text, measured, ok):
        status = "not measured" if ok is None else ("met" if ok else "**missed**")
        add(f"| {text} | {measured} | {status} |")

    gm, gh, mm, mh = (runs.get(k) for k in ("dnsguard-miss", "dnsguard-hit", "dnsmasq-miss", "dnsmasq-hit"))
    if gm and mm and mm["qps"]:
        x = gm["qps"] / mm["qps"]
        target("dnsguard miss ≥ 5× dnsmasq --nftset miss throughput", f"{x:.2f}×", x >= 5)
    else:
        target("dnsguard miss ≥ 5× dnsmasq --nftset miss throughput", "—", None)
    if gm and direct and direct["qps"]:
        x = gm["qps"] / direct["qps"]
        target("dnsguard miss ≥ 0.6× direct throughput", f"{x:.2f}×", x >= 0.6)
    else:
        target("dnsguard miss ≥ 0.6× direct throughput", "—", None)
    lm, ld = load(args.scratch, "dnsguard-miss-1"), load(args.scratch, "direct-1")
    if lm and ld:
        added = lm["latency_us"]["p50"] - ld["latency_us"]["p50"]
        target("dnsguard miss: added p50 over direct ≤ 50 µs (one in flight)", f"{added:.1f} µs", added <= 50)
    else:
        target("dnsguard miss: added p50 over direct ≤ 50 µs (one in flight)", "—", None)
    lm, ld = load(args.scratch, "dnsguard-miss-1c"), load(args.scratch, "direct-1c")
    if lm and ld and lm["qps"] and ld["qps"]:
        added = 1e6 / lm["qps"] - 1e6 / ld["qps"]
        target("(same, all on one CPU: time per lookup over direct, no cross-CPU wake-ups)",
               f"{added:.1f} µs", added <= 50)
    if gh and mh and mh["qps"]:
        x = gh["qps"] / mh["qps"]
        target("dnsguard hit ≥ dnsmasq hit throughput", f"{x:.2f}×", x >= 1)
    else:
        target("dnsguard hit ≥ dnsmasq hit throughput", "—", None)
    gc = load(args.scratch, "dnsguard-connect")
    if gc:
        c = gc["connect"]
        target("0 connections refused after the answer, full load", f"{c['failed']} of {c['attempted']} failed",
               c["failed"] == 0 and c["attempted"] > 0 and c["skipped"] == 0)
    else:
        target("0 connections refused after the answer, full load", "—", None)
    if rss.get("dnsguard"):
        mib = rss["dnsguard"] / 1024
        target("dnsguard RSS ≤ 16 MiB with 10 000 cached names", f"{mib:.1f} MiB", mib <= 16)
    else:
        target("dnsguard RSS ≤ 16 MiB with 10 000 cached names", "—", None)
    add("")
    add("![latency by percentile](latency.png)")
    add("")
    results = os.path.join(args.out, "RESULTS.md")
    # The sections other scripts own (gate_compare.sh, soak.sh) stay as they are.
    for block in kept_blocks(results):
        add(block)
        add("")
    with open(results, "w") as f:
        f.write("\n".join(lines))

    # gnuplot: latency against percentile on an HdrHistogram-style axis
    # (x = 1/(1-p), log scale), one line per scenario.
    # The maximum (p100) is drawn at the right edge: one decade past the
    # finest percentile any run resolved.
    curves, finest = [], 10.0
    for label, title in SCENARIOS:
        curve = os.path.join(args.scratch, label + ".curve")
        if os.path.exists(curve) and os.path.getsize(curve) > 0:
            curves.append((curve, title))
            for line in open(curve):
                p = float(line.split()[0])
                if p < 100:
                    finest = max(finest, 1 / (1 - p / 100))
    edge = 10 ** (math.ceil(math.log10(finest) + 1e-9))
    plots = [f"'{c}' using (($1<100)?1/(1-$1/100):{edge}):2 with lines lw 2 title '{t}'" for c, t in curves]
    with open(os.path.join(args.scratch, "latency.gp"), "w") as f:
        f.write(f"""set terminal pngcairo size 1000,600 noenhanced
set output '{os.path.join(args.out, "latency.png")}'
set title 'DNS resolution latency by percentile ({args.outstanding} in flight, UDP)'
set logscale x
set xrange [1:{edge}]
set logscale y
set xlabel 'percentile'
set ylabel 'latency (us)'
set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set grid
set key top left
""")
        f.write("plot " + ", \\\n     ".join(plots) + "\n" if plots else "")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scratch", required=True)
    p.add_argument("--out")
    p.add_argument("--command", default="bench/compare.sh")
    p.add_argument("--cpus", default="")
    p.add_argument("--count", default="")
    p.add_argument("--outstanding", default="")
    p.add_argument("--quick", default="0")
    p.add_argument("--check-connects", action="store_true")
    args = p.parse_args()
    if args.check_connects:
        return check_connects(args.scratch)
    write_results(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
