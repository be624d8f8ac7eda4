#!/usr/bin/env python3
"""A DNS server on 127.0.0.1 standing in for a resolver that drops answers
under a burst of parallel lookups, for tests/bench/nixgen.sh.

usage: dns_standin.py PORT_FILE QUERY_LOG

Answers A queries for names under .bench.test with 127.0.0.1 and anything
else with no records; every query that arrives within 20 ms of the one before
it is dropped (as a home router's resolver does when 64 lookups arrive at
once). Each query is appended to QUERY_LOG as "name type answered|dropped".
"""
import os
import socket
import struct
import sys
import time


def question(msg):
    at, labels = 12, []
    while msg[at]:
        n = msg[at]
        labels.append(msg[at + 1 : at + 1 + n].decode("latin-1"))
        at += 1 + n
    qtype = struct.unpack(">H", msg[at + 1 : at + 3])[0]
    return ".".join(labels), qtype, at + 5


def reply(query, name, qtype):
    ip = qtype == 1 and name.lower().endswith(".bench.test")
    out = bytearray(query)
    out[2], out[3] = 0x81, 0x80
    out[6:12] = struct.pack(">HHH", 1 if ip else 0, 0, 0)
    if ip:
        out += bytes([0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1])
    return bytes(out)


def main(port_file, log_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    last = 0.0
    with open(log_path, "a", buffering=1) as log:
        while True:
            msg, peer = sock.recvfrom(512)
            now = time.monotonic()
            burst, last = now - last < 0.020, now
            try:
                name, qtype, end = question(msg)
            except (IndexError, struct.error):
                continue
            log.write(f"{name} {qtype} {'dropped' if burst else 'answered'}\n")
            if not burst:
                sock.sendto(reply(msg[:end], name, qtype), peer)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
