#!/usr/bin/env python3
"""The connection gate test's "internet": one process serving HTTPS on 443 and
HTTP on 80 at every given address, so several names share one address (as on
a CDN). Runs in the test's world namespace; stdlib only.

    world_gate.py --addr A [--addr A ...] [--retry-addr A ...] --cert CERT --key KEY
                  --sni-log FILE --ready FILE

--retry-addr: HTTPS there takes only the P-256 group, so a client whose
first key share is X25519 gets a HelloRetryRequest (TLS 1.3, RFC 8446 4.1.4).
--sni-log: every server name the TLS servers were asked for, one line each
("<addr> <name>"), as OpenSSL reports it for each ClientHello it processes.

GET /           -> "site <Host header>\n" (which site answered)
GET /big?n=N    -> N bytes of a fixed pattern (a large transfer through the relay)
POST /echo      -> the request body back (both directions through the relay)
"""
import argparse
import http.server
import socket
import ssl
import threading

PATTERN = bytes(range(256)) * 256  # 64 KiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, body_len, chunks):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(body_len))
        self.end_headers()
        for c in chunks:
            self.wfile.write(c)

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/big"):
            n = int(self.path.split("n=", 1)[1]) if "n=" in self.path else 1 << 20
            def chunks():
                left = n
                while left > 0:
                    c = PATTERN[:min(left, len(PATTERN))]
                    left -= len(c)
                    yield c
            self._send(n, chunks())
            return
        body = ("site %s\n" % self.headers.get("Host", "")).encode()
        self._send(len(body), [body])

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self._send(len(body), [body])

    def log_message(self, fmt, *args):
        pass


def serve(addr, port, tls_ctx):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET

    class Server(http.server.ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    server = Server((addr, port), Handler)
    if tls_ctx is not None:
        server.socket = tls_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def tls_context(args, addr, groups=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if groups is not None:
        ctx.set_ecdh_curve(groups)  # OpenSSL 3: the server's whole group list, TLS 1.3 included
    lock = threading.Lock()

    def note(_sock, name, _ctx):
        with lock, open(args.sni_log, "a") as f:
            f.write("%s %s\n" % (addr, name))

    ctx.sni_callback = note
    return ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", action="append", required=True)
    ap.add_argument("--retry-addr", action="append", default=[])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--sni-log", required=True)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    for a in args.addr:
        serve(a, 443, tls_context(args, a))
        serve(a, 80, None)
    for a in args.retry_addr:
        serve(a, 443, tls_context(args, a, "prime256v1"))
    with open(args.ready, "w") as f:
        f.write("ready\n")
    threading.Event().wait()


if __name__ == "__main__":
    main()
