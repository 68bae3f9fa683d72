#!/usr/bin/env python3
"""The connection gate test's "internet": one process serving HTTPS on 443 and
HTTP on 80 at every given address, so several names share one address (as on
a CDN). Runs in the test's world namespace; stdlib only.

    world_gate.py --addr A [--addr A ...] [--retry-addr A ...] [--broken-retry-addr A ...]
                  --cert CERT --key KEY --sni-log FILE --ready FILE

--retry-addr: HTTPS there takes only the P-256 group, so a client whose
first key share is X25519 gets a HelloRetryRequest (TLS 1.3, RFC 8446 4.1.4).
--broken-retry-addr: port 443 there is no TLS server but a broken one that
answers every ClientHello with a HelloRetryRequest, the second too (which
RFC 8446 forbids); it writes "<addr> <name>" to the SNI log for each hello.
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
import struct
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


# RFC 8446 4.1.3: the random of a HelloRetryRequest.
RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def hello_retry_request(session_id):
    exts = struct.pack(">HHH", 43, 2, 0x0304) + struct.pack(">HHH", 51, 2, 0x0017)  # TLS 1.3; P-256
    body = (b"\x03\x03" + RETRY_RANDOM + bytes([len(session_id)]) + session_id + b"\x13\x01\x00" +
            struct.pack(">H", len(exts)) + exts)
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack(">H", len(message)) + message


def hello_fields(message):
    """(session id, server name) of a ClientHello message; name None without SNI."""
    p = 4 + 2 + 32
    session_id = message[p + 1:p + 1 + message[p]]
    p += 1 + message[p]
    p += 2 + struct.unpack(">H", message[p:p + 2])[0]
    p += 1 + message[p] + 2
    while p + 4 <= len(message):
        kind, size = struct.unpack(">HH", message[p:p + 4])
        if kind == 0:
            return session_id, message[p + 9:p + 4 + size].decode(errors="replace")
        p += 4 + size
    return session_id, None


def broken_retry(addr, sni_log, lock):
    listener = socket.create_server((addr, 443))

    def answer(conn):
        with conn:
            reader = conn.makefile("rb")
            while True:
                header = reader.read(5)
                if len(header) < 5:
                    return
                body = reader.read(struct.unpack(">H", header[3:5])[0])
                if header[0] != 22 or not body or body[0] != 1:
                    continue  # its ChangeCipherSpec
                session_id, name = hello_fields(body)
                with lock, open(sni_log, "a") as f:
                    f.write("%s %s\n" % (addr, name))
                conn.sendall(hello_retry_request(session_id))

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


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
    ap.add_argument("--broken-retry-addr", action="append", default=[])
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
    for a in args.broken_retry_addr:
        broken_retry(a, args.sni_log, threading.Lock())
    with open(args.ready, "w") as f:
        f.write("ready\n")
    threading.Event().wait()


if __name__ == "__main__":
    main()
