#!/usr/bin/env python3
"""HTTPS and HTTP servers for the secret relay's tests: they log what they
receive and answer with digests, never with the credential itself (an
answer that echoed it would hand the real value to the agent, which is
exactly what the tests check never happens).

  echo_server.py --site ADDR,CERT,KEY ... --http ADDR ... --log FILE --ready FILE

Paths:
  /echo      JSON: host, method, the sha256 of Authorization and x-api-key,
             whether a request body came and its length and sha256
  /upload    the same, for a big body (read as it streams)
  /stream    server-sent events: "data: 1", then 3 s later "data: 2"
  /bulk?N    N bytes of zeros, not logged (bench/relay.sh's throughput)
  /private/  with --private-dir DIR and --private-token TOKEN: the files of
             DIR (e.g. a bare repository for git's dumb HTTP), only for a
             request whose Basic password is TOKEN; else 401 with
             WWW-Authenticate: Basic (what makes git ask its credential helper)
X-Request-Id comes back in every JSON answer, and TRACE echoes the request:
the reflections a secret's host may have.
Every request's headers go to --log as one JSON line (the test reads it to
see what arrived)."""
import argparse, base64, hashlib, os, http.server, json, socket, ssl, sys, threading, time


def digest(v):
    return hashlib.sha256(v.encode()).hexdigest() if v is not None else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in separate writes: without this, Nagle and the
    # client's delayed ACK add 40 ms to every kept-alive request.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def record(self, body_len, body_sha):
        if self.server.log_path == "-":
            return
        line = json.dumps({"site": self.server.site_name, "path": self.path, "method": self.command,
                           "headers": dict(self.headers.items()), "body_len": body_len, "body_sha": body_sha})
        with self.server.log_lock, open(self.server.log_path, "a") as f:
            f.write(line + "\n")

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 65536))
                    h.update(piece); n += len(piece); left -= len(piece)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                piece = self.rfile.read(min(left, 65536))
                if not piece:
                    break
                h.update(piece); n += len(piece); left -= len(piece)
        return n, h.hexdigest()

    def answer(self, obj, status=200):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        # Like many API frontends: a request id comes back as it was sent
        # (a header a secret's value must never be put into).
        if self.headers.get("X-Request-Id") is not None:
            self.send_header("X-Request-Id", self.headers.get("X-Request-Id"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def private(self):
        """/private/…: DIR's files for the right Basic password, else 401."""
        token = self.server.private_token
        auth = self.headers.get("Authorization", "")
        password = None
        if auth.startswith("Basic "):
            try:
                password = base64.b64decode(auth[6:], validate=True).decode().partition(":")[2]
            except ValueError:
                pass
        if token is None or password != token:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="cagent-e2e"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rel = self.path.split("?")[0][len("/private/"):]
        root = os.path.realpath(self.server.private_dir)
        path = os.path.realpath(os.path.join(root, rel))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_any(self):
        if self.path.startswith("/bulk?"):
            left = int(self.path.split("?", 1)[1])
            self.send_response(200)
            self.send_header("Content-Length", str(left))
            self.end_headers()
            block = b"\0" * (1 << 20)
            while left:
                piece = block[:min(left, len(block))]
                self.wfile.write(piece)
                left -= len(piece)
            return
        n, sha = self.read_body()
        self.record(n, sha)
        if self.path.startswith("/private/"):
            self.private()
            return
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, pause in ((1, 3.0), (2, 0)):
                ev = f"data: {i}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev)); self.wfile.flush()
                time.sleep(pause)
            self.wfile.write(b"0\r\n\r\n"); self.wfile.flush()
            return
        self.answer({"site": self.server.site_name, "host": self.headers.get("Host"), "method": self.command,
                     "authorization_sha256": digest(self.headers.get("Authorization")),
                     "x_api_key_sha256": digest(self.headers.get("x-api-key")),
                     "body_len": n, "body_sha256": sha})

    def do_TRACE(self):
        # As Apache answers by default: the request, credentials and all.
        data = (self.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())).encode()
        self.record(0, None)
        self.send_response(200)
        self.send_header("Content-Type", "message/http")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, port, site_name, log_path, lock):
        self.address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.site_name = site_name
        self.log_path = log_path
        self.log_lock = lock
        self.private_dir = None
        self.private_token = None
        super().__init__((addr, port), Handler)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--site", action="append", default=[], help="ADDR,CERT,KEY: HTTPS on ADDR:443")
    p.add_argument("--http", action="append", default=[], help="ADDR: plain HTTP on ADDR:80")
    p.add_argument("--log", required=True, help="request log; - for none")
    p.add_argument("--ready", required=True)
    p.add_argument("--private-dir", help="served under /private/ to the right Basic password")
    p.add_argument("--private-token", help="that password")
    a = p.parse_args()
    lock = threading.Lock()
    servers = []
    for spec in a.site:
        addr, cert, key = spec.split(",")
        s = Server(addr, 443, addr, a.log, lock)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["h2", "http/1.1"])  # offers h2: the relay must not pass it on
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
        servers.append(s)
    for addr in a.http:
        servers.append(Server(addr, 80, addr, a.log, lock))
    for s in servers:
        s.private_dir, s.private_token = a.private_dir, a.private_token
        threading.Thread(target=s.serve_forever, daemon=True).start()
    open(a.ready, "w").write("ready\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
