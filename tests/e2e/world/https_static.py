#!/usr/bin/env python3
"""The world's HTTPS server: static files over TLS.

    python3 https_static.py CERT KEY DIR [PORT]

Serves DIR on [::]:PORT (default 443), dual-stack, with a certificate signed
by a CA the test generated. DIR holds index.html (a known body) and a bare
git repository prepared for git's "dumb" HTTP protocol, so curl, python3,
node and git can each fetch something. Stdlib only; runs in a world container.
"""
import functools
import http.server
import ssl
import sys


from http_echo import DualStackServer  # same folder (/e2e in the container)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: https_static.py CERT KEY DIR [PORT]")
    cert, key, root = sys.argv[1:4]
    port = int(sys.argv[4]) if len(sys.argv) == 5 else 443
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    server = DualStackServer(("::", port), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
