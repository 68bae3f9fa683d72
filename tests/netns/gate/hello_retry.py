#!/usr/bin/env python3
"""A TLS 1.3 client in raw bytes for the gate test: the first ClientHello
offers only an X25519 key share (a server that takes only P-256 answers with
a HelloRetryRequest), the second one a P-256 share and the name given for
it, which may differ from the first. It cannot finish a handshake (it holds
no keys); it reports what the server answered to each hello.

    hello_retry.py ADDR FIRST_NAME SECOND_NAME [--pipelined | --hold READY GO] [--ech]

--pipelined: send both hellos at once, before any answer (what a hostile
client may do so the second one is already on its way when the first is
judged).
--hold: after the first answer, create READY and wait (10 s at most) for GO
to exist before sending the second hello.
--ech: the first hello also offers Encrypted Client Hello (an outer
encrypted_client_hello extension: a front end would serve the site named in
its encrypted inner hello, not the visible one).

Prints "first=ANSWER" and "second=ANSWER", ANSWER one of hrr, serverhello,
alert, other, reset, closed, timeout.
"""
import os
import socket
import struct
import sys
import time

# RFC 8446 4.1.3: the random of a HelloRetryRequest is SHA-256("HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
X25519, SECP256R1 = 0x001D, 0x0017
# The P-256 base point, uncompressed: a valid public key, so the server
# accepts the second hello's key share (its private key is 1).
P256_G = bytes.fromhex(
    "04"
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
CHANGE_CIPHER_SPEC = bytes.fromhex("140303000101")  # middlebox compatibility mode


def ext(kind, data):
    return struct.pack(">HH", kind, len(data)) + data


def ech_outer():
    """An ECHClientHello of type outer (RFC 9849 5): cipher suite, config id,
    encapsulated key and payload — random, as GREASE ECH is."""
    enc, payload = os.urandom(32), os.urandom(128)
    return (b"\x00" + struct.pack(">HH", 0x0001, 0x0001) + os.urandom(1) +
            struct.pack(">H", len(enc)) + enc + struct.pack(">H", len(payload)) + payload)


def client_hello(name, group, key, session_id, ech=False):
    host = name.encode()
    exts = ext(0, struct.pack(">HBH", len(host) + 3, 0, len(host)) + host)  # server_name
    if ech:
        exts += ext(0xFE0D, ech_outer())  # encrypted_client_hello
    exts += ext(10, struct.pack(">HHH", 4, X25519, SECP256R1))  # supported_groups
    exts += ext(13, struct.pack(">HHHH", 6, 0x0804, 0x0403, 0x0401))  # signature_algorithms
    exts += ext(43, b"\x02\x03\x04")  # supported_versions: TLS 1.3
    exts += ext(51, struct.pack(">HHH", len(key) + 4, group, len(key)) + key)  # key_share
    body = (b"\x03\x03" + os.urandom(32) + bytes([len(session_id)]) + session_id +
            struct.pack(">HH", 2, 0x1301) + b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack(">H", len(message)) + message


def read_exact(reader, n):
    data = reader.read(n)  # a buffered reader: short only at the end
    if len(data) < n:
        raise EOFError
    return data


def first_message(reader):
    """What the server's next handshake message is (ChangeCipherSpec skipped)."""
    message = b""
    for _ in range(16):
        header = read_exact(reader, 5)
        body = read_exact(reader, struct.unpack(">H", header[3:5])[0])
        if header[0] == 20:
            continue
        if header[0] == 21:
            return "alert"
        if header[0] != 22:
            return "other"
        message += body
        if len(message) >= 4 and len(message) >= 4 + int.from_bytes(message[1:4], "big"):
            if message[0] != 2:
                return "other"
            return "hrr" if message[6:38] == HRR_RANDOM else "serverhello"
    return "other"


def answer(reader):
    try:
        return first_message(reader)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except EOFError:
        return "closed"
    except socket.timeout:
        return "timeout"


def main():
    addr, first, second = sys.argv[1:4]
    pipelined = "--pipelined" in sys.argv[4:]
    hold = sys.argv[sys.argv.index("--hold") + 1:][:2] if "--hold" in sys.argv else None
    session_id = os.urandom(32)
    hello1 = client_hello(first, X25519, os.urandom(32), session_id, ech="--ech" in sys.argv[4:])
    hello2 = CHANGE_CIPHER_SPEC + client_hello(second, SECP256R1, P256_G, session_id)
    sock = socket.create_connection((addr, 443), timeout=5)
    reader = sock.makefile("rb")
    if pipelined:
        sock.sendall(hello1 + hello2)
        print("first=" + answer(reader))
        print("second=" + answer(reader))
        return
    sock.sendall(hello1)
    got = answer(reader)
    print("first=" + got)
    if got != "hrr":
        return
    if hold:
        open(hold[0], "w").close()
        for _ in range(200):
            if os.path.exists(hold[1]):
                break
            time.sleep(0.05)
    try:
        sock.sendall(hello2)
    except (ConnectionResetError, BrokenPipeError):
        print("second=reset")
        return
    print("second=" + answer(reader))


if __name__ == "__main__":
    main()
