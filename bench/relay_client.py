#!/usr/bin/env python3
"""The client side of bench/relay.sh: per-request latency on one kept-alive
TLS connection to a host (the download is curl's: a C client).

    relay_client.py HOST CAFILE REQUESTS

Prints one JSON line: p50_ms, p99_ms, mean_ms."""
import json, socket, ssl, statistics, sys, time

host, cafile, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["http/1.1"])


def connect():
    raw = socket.create_connection((host, 443), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname=host)


def response(sock, buf):
    """Reads one response with Content-Length; returns (body length, leftover)."""
    while b"\r\n\r\n" not in buf:
        piece = sock.recv(65536)
        if not piece:
            raise RuntimeError("closed")
        buf += piece
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    got = len(rest)
    while got < length:
        piece = sock.recv(1 << 20)
        if not piece:
            raise RuntimeError("closed")
        got += len(piece)
    return length, b""


s = connect()
request = f"GET /echo HTTP/1.1\r\nHost: {host}\r\nx-api-key: cagent-secret-bench-0000\r\n\r\n".encode()
times = []
for i in range(n + 20):
    t = time.perf_counter()
    s.sendall(request)
    response(s, b"")
    if i >= 20:  # the first ones warm up the path
        times.append((time.perf_counter() - t) * 1000)
s.close()
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2], "p99_ms": times[int(len(times) * 0.99) - 1],
                  "mean_ms": statistics.mean(times)}))
