#!/usr/bin/env python3
"""A DNS responder and an HTTP file server on 127.0.0.1, for tests that run inside a
network namespace of their own (so port 53 is theirs). Answers A queries for the names
given with --name NAME=IPV4, NODATA for their other types, NXDOMAIN for the rest (RFC 1035
message format, UDP only). Serves --root over HTTP on --port. Prints READY when both are
bound, then serves until killed.
"""
import argparse
import functools
import http.server
import socket
import struct
import sys
import threading


def parse_name(packet, offset):
    labels = []
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            return ".".join(labels).lower(), offset
        if length & 0xC0:
            raise ValueError("compressed names do not occur in questions")
        labels.append(packet[offset:offset + length].decode("ascii"))
        offset += length


def answer(packet, names):
    ident, _flags, qdcount = struct.unpack(">HHH", packet[:6])
    if qdcount != 1:
        return None
    name, end = parse_name(packet, 12)
    qtype, qclass = struct.unpack(">HH", packet[end:end + 4])
    question = packet[12:end + 4]
    records = b""
    rcode = 0
    if name not in names:
        rcode = 3  # NXDOMAIN
    elif qtype == 1 and qclass == 1:
        records = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(names[name])
    flags = 0x8180 | rcode  # response, recursion desired and available
    header = struct.pack(">HHHHHH", ident, flags, 1, 1 if records else 0, 0, 0)
    return header + question + records


def serve_dns(sock, names):
    while True:
        packet, peer = sock.recvfrom(512)
        try:
            reply = answer(packet, names)
        except (ValueError, IndexError, struct.error):
            continue
        if reply is not None:
            sock.sendto(reply, peer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", action="append", default=[])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    names = dict(item.lower().split("=", 1) for item in args.name)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 53))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    threading.Thread(target=serve_dns, args=(dns, names), daemon=True).start()
    print("READY", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
