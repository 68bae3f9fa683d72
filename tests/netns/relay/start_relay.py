#!/usr/bin/env python3
"""Starts cagent-relay as cage-init does: binds 127.0.0.1:PORT as root,
then runs the relay as UID (setpriv, no capabilities, no_new_privs) with
the listener on fd 3, the secrets file on fd 0, its record on fd 4, and its
stdout (the session CA's PEM) written to CA_OUT.

  start_relay.py PORT UID RELAY SECRETS_JSON RECORD CA_OUT TRUST"""
import os, socket, subprocess, sys

port, uid, relay, secrets, record, ca_out, trust = sys.argv[1:8]
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(port)))
listener.listen(128)
rec = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
os.dup2(listener.fileno(), 3, inheritable=True)
os.dup2(rec, 4, inheritable=True)
with open(secrets, "rb") as stdin, open(ca_out, "wb") as stdout:
    proc = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                             "--bounding-set=-all", "--no-new-privs", relay, "--trust", trust,
                             "--listen-fd", "3", "--record-fd", "4"],
                            stdin=stdin, stdout=stdout, pass_fds=(3, 4))
print(proc.pid, flush=True)
