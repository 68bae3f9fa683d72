#!/usr/bin/env python3
"""A stand-in for Docker's embedded resolver, run as root inside the cage's
network namespace (where dockerd opens it on a user-defined network).

usage: embedded_resolver.py --ready FILE --forward ADDR [--alias NAME=ADDR]...
                            [--slow NAME=SECONDS]...

Listens on 127.0.0.11, UDP and TCP, each on a port the kernel picks (Docker
then DNATs 127.0.0.11:53 there; the test installs the same rules). Writes
"udp=<port> tcp=<port>" to FILE once both listen. A name given with --alias
is answered here (a container's network alias: A record, TTL 60); every other
query is forwarded, as Docker does, from a fresh UDP socket of this
namespace — as root — to ADDR:53, and the answer relayed back. --slow delays
the forwarding of that name (a slow upstream: a forged answer's window).
"""
import argparse
import os
import socket
import struct
import threading
import time


def question(packet):
    labels, pos = [], 12
    while pos < len(packet) and packet[pos] != 0:
        labels.append(packet[pos + 1:pos + 1 + packet[pos]].decode("ascii", "replace").lower())
        pos += 1 + packet[pos]
    return ".".join(labels), pos + 5  # name, end of the question


def alias_answer(query, addr):
    _, end = question(query)
    flags = 0x8180  # response, recursion desired + available, NOERROR
    header = query[:2] + struct.pack("!HHHHH", flags, 1, 1, 0, 0)
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
    return header + query[12:end] + record


def forward(query, upstream, delay):
    if delay:
        time.sleep(delay)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query, (upstream, 53))
        return s.recvfrom(65535)[0]
    except OSError:
        return None
    finally:
        s.close()


def resolve(query, args):
    if len(query) < 17:
        return None
    name, _ = question(query)
    if name in args.aliases:
        return alias_answer(query, args.aliases[name])
    return forward(query, args.forward, args.slow.get(name, 0))


def serve_udp(sock, args):
    while True:
        query, peer = sock.recvfrom(65535)

        def one(query=query, peer=peer):
            reply = resolve(query, args)
            if reply:
                sock.sendto(reply, peer)
        threading.Thread(target=one, daemon=True).start()


def serve_tcp(listener, args):
    while True:
        conn, _ = listener.accept()

        def one(conn=conn):
            with conn:
                try:
                    size = struct.unpack("!H", conn.recv(2))[0]
                    query = b""
                    while len(query) < size:
                        chunk = conn.recv(size - len(query))
                        if not chunk:
                            return
                        query += chunk
                    reply = resolve(query, args)
                    if reply:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, struct.error):
                    pass
        threading.Thread(target=one, daemon=True).start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ready", required=True)
    p.add_argument("--forward", required=True)
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--slow", action="append", default=[])
    args = p.parse_args()
    args.aliases = dict(a.split("=", 1) for a in args.alias)
    args.slow = {n: float(s) for n, s in (x.split("=", 1) for x in args.slow)}
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.11", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.11", 0))
    tcp.listen(64)
    threading.Thread(target=serve_tcp, args=(tcp, args), daemon=True).start()
    with open(args.ready + ".tmp", "w") as f:
        f.write(f"udp={udp.getsockname()[1]} tcp={tcp.getsockname()[1]}\n")
    os.rename(args.ready + ".tmp", args.ready)
    serve_udp(udp, args)


if __name__ == "__main__":
    main()
