#!/usr/bin/env python3
"""Joins one guest TCP connection to a server on the host's loopback.

qemu's user network runs this for every connection a guest opens to a guestfwd
address (guestfwd=tcp:IP:PORT-cmd:python3 guestfwd_relay.py HOSTPORT), with the guest's
connection as stdin and stdout. Only 127.0.0.1 is ever dialled.
"""
import os
import select
import socket
import sys


def main():
    port = int(sys.argv[1])
    upstream = socket.create_connection(("127.0.0.1", port))
    guest_in, guest_out = 0, 1
    open_in, open_up = True, True
    while open_in or open_up:
        watch = ([guest_in] if open_in else []) + ([upstream] if open_up else [])
        ready, _, _ = select.select(watch, [], [])
        if guest_in in ready:
            data = os.read(guest_in, 65536)
            if data:
                upstream.sendall(data)
            else:
                open_in = False
                upstream.shutdown(socket.SHUT_WR)
        if upstream in ready:
            data = upstream.recv(65536)
            if data:
                view = memoryview(data)
                while view:
                    view = view[os.write(guest_out, view):]
            else:
                open_up = False
                break
    upstream.close()


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError):
        sys.exit(1)
