#!/usr/bin/env python3
"""Probes the e2e cases run inside the cage (copied into each test workspace).

    python3 probe.py nft-list     ask nf_tables for its tables over netlink
    python3 probe.py raw-socket   try to open raw IPv4/IPv6/packet sockets
    python3 probe.py setuid0      try setuid(0) and setgid(0)
    python3 probe.py caps         decode CapBnd/CapEff/CapPrm/CapAmb/NoNewPrivs

Each prints one line per attempt: "<what> ok ..." or "<what> denied <errno>".
The image carries no nft binary (cage-init talks netlink itself), so
"nft list ruleset" is done here the way nft does it: an NFT_MSG_GETTABLE dump
on a NETLINK_NETFILTER socket. Run as root in the container (docker exec) the
same probe lists the cagent table: that is the positive control proving the
probe can succeed, so its failure for the agent means something.
"""
import errno
import os
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE = 1
NFT_MSG_NEWTABLE = 0
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NFTA_TABLE_NAME = 1

CAP_NAMES = {12: "NET_ADMIN", 13: "NET_RAW", 21: "SYS_ADMIN", 19: "SYS_PTRACE",
             8: "SETPCAP", 31: "SETFCAP", 6: "SETGID", 7: "SETUID"}


def nft_list():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.settimeout(5)
    msg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
    # nlmsghdr + nfgenmsg(family=AF_UNSPEC, version=0, res_id=0)
    body = struct.pack("BBH", socket.AF_UNSPEC, 0, 0)
    hdr = struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 1, 0)
    s.send(hdr + body)
    tables = []
    while True:
        data = s.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                print("nft-list error malformed reply")
                return 2
            if mtype == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, off + 16)
                if err == 0:
                    off += (length + 3) & ~3
                    continue
                print("nft-list denied %s" % errno.errorcode.get(-err, str(-err)))
                return 1
            if mtype == NLMSG_DONE:
                print("nft-list ok tables=%s" % ",".join(tables))
                return 0
            # NEWTABLE: nfgenmsg (4 bytes) then attributes
            if mtype & 0xff == NFT_MSG_NEWTABLE:
                aoff = off + 20
                while aoff + 4 <= off + length:
                    alen, atype = struct.unpack_from("=HH", data, aoff)
                    if alen < 4:
                        break
                    if atype & 0x7fff == NFTA_TABLE_NAME:
                        tables.append(data[aoff + 4:aoff + alen].rstrip(b"\0").decode())
                    aoff += (alen + 3) & ~3
            off += (length + 3) & ~3


def try_socket(what, *args):
    try:
        socket.socket(*args).close()
        print("%s ok" % what)
        return True
    except OSError as e:
        print("%s denied %s" % (what, errno.errorcode.get(e.errno, str(e.errno))))
        return False


def raw_socket():
    opened = [try_socket("raw4", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
              try_socket("raw6", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
              try_socket("packet", socket.AF_PACKET, socket.SOCK_RAW, 0)]
    return 0 if any(opened) else 1


def setuid0():
    ok = False
    for what, fn in (("setgid0", os.setgid), ("setuid0", os.setuid)):
        try:
            fn(0)
            print("%s ok" % what)
            ok = True
        except OSError as e:
            print("%s denied %s" % (what, errno.errorcode.get(e.errno, str(e.errno))))
    print("uid=%d euid=%d" % (os.getuid(), os.geteuid()))
    return 0 if ok else 1


def caps():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
        mask = int(fields[key], 16)
        names = [n for bit, n in sorted(CAP_NAMES.items()) if mask >> bit & 1]
        print("%s %s %s" % (key, fields[key], ",".join(names) or "-"))
    print("NoNewPrivs %s" % fields.get("NoNewPrivs", "?"))
    return 0


def main():
    cmds = {"nft-list": nft_list, "raw-socket": raw_socket, "setuid0": setuid0, "caps": caps}
    if len(sys.argv) != 2 or sys.argv[1] not in cmds:
        sys.exit("usage: probe.py " + "|".join(cmds))
    sys.exit(cmds[sys.argv[1]]())


if __name__ == "__main__":
    main()
