#!/usr/bin/env python3
"""A web server of the e2e test world: answers every GET with a known body.

    python3 http_echo.py NAME [PORT]

Listens on [::]:PORT (default 80), dual-stack, so one container answers on its
IPv4 and its IPv6 address. The body is "cagent-e2e NAME\n": a case asserts not
only that a request succeeded but which server answered it (rotation cases
tell the addresses apart by it). Runs inside a world container, never in the
cage; stdlib only.
"""
import http.server
import socket
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, fmt, *args):
        # One line per request on stderr (docker logs): useful when a case fails.
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))


class DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        # Accept IPv4 too (as ::ffff:a.b.c.d): one socket for both families.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: http_echo.py NAME [PORT]")
    Handler.body = ("cagent-e2e %s\n" % sys.argv[1]).encode()
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 80
    DualStackServer(("::", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
