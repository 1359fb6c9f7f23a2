#!/usr/bin/env python3
"""A loopback HTTP server for kiln's tests, with failure modes chosen by path prefix.

  /files/NAME            serve ROOT/NAME (Range requests honoured), with an ETag (size and
                         mtime) and Last-Modified; If-None-Match / If-Modified-Since
                         that still hold are answered 304
  /drop/N/NAME           the first request for this path sends N bytes of the body, then
                         cuts the connection; later requests are served normally
  /status/CODE/NAME      always answer CODE
  /slow/MS/NAME          sleep MS milliseconds between 16 KiB chunks
  /norange/NAME          ignore Range headers (always 200 with the whole file)
  /endless/NAME          200 without Content-Length, then zero bytes until the client hangs up
  /trickle/MS/NAME       send the file one byte every MS milliseconds
  /__log                 JSON list of the requests seen: {"path", "range", "if_none_match",
                         "if_modified_since", "status"}

With --tls-cert/--tls-key it speaks HTTPS. It binds 127.0.0.1 only, on a free port, and prints "PORT <n>" on stdout when ready.
"""
import argparse
import email.utils
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = []
LOCK = threading.Lock()
DROPPED = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def do_GET(self):
        if self.path == "/__log":
            with LOCK:
                body = json.dumps(LOG).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        entry = {"path": self.path, "range": self.headers.get("Range"),
                 "if_none_match": self.headers.get("If-None-Match"),
                 "if_modified_since": self.headers.get("If-Modified-Since"), "status": None}
        with LOCK:
            LOG.append(entry)
        parts = self.path.lstrip("/").split("/")
        mode, arg = parts[0], None
        if mode == "endless":
            return self.endless()
        if mode in ("drop", "status", "slow", "trickle"):
            if len(parts) < 3:
                return self.fail(400)
            arg, name = parts[1], "/".join(parts[2:])
        elif mode in ("files", "norange"):
            name = "/".join(parts[1:])
        else:
            return self.fail(404)
        if mode == "status":
            return self.fail(int(arg))
        path = os.path.normpath(os.path.join(self.server.root, name))
        if not path.startswith(self.server.root + os.sep) or not os.path.isfile(path):
            return self.fail(404)
        size = os.path.getsize(path)
        st = os.stat(path)
        etag = '"%x-%x"' % (st.st_size, st.st_mtime_ns)
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        if mode == "files" and not self.headers.get("Range"):
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            fresh = inm == etag if inm is not None else (
                ims is not None and email.utils.parsedate_to_datetime(ims).timestamp() >= int(st.st_mtime))
            if fresh:
                entry["status"] = 304
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return

        def read(lo, hi):  # only the bytes asked for: boot tests serve whole-disk images
            with open(path, "rb") as f:
                f.seek(lo)
                return f.read(max(0, min(hi, size) - lo))

        start = 0
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m and mode != "norange":
            start = int(m.group(1))
            end = int(m.group(2)) + 1 if m.group(2) else size
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = read(start, end)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, start + len(body) - 1, size))
        else:
            body = read(0, size)
            self.send_response(200)
        entry["status"] = 206 if start or (m and mode != "norange") else 200
        if mode == "files":
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if mode == "drop":
            with LOCK:
                first = self.path not in DROPPED
                DROPPED.add(self.path)
            if first:
                self.wfile.write(body[: int(arg)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
        if mode == "trickle":
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(int(arg) / 1000.0)
            return
        chunk = 16384
        for i in range(0, len(body), chunk):
            self.wfile.write(body[i:i + chunk])
            if mode == "slow":
                self.wfile.flush()
                time.sleep(int(arg) / 1000.0)

    def endless(self):
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        zeros = bytes(1 << 16)
        try:
            while True:
                self.wfile.write(zeros)
        except OSError:
            pass

    def fail(self, code):
        body = b"error %d\n" % code
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # clients that hang up are part of the tests
    server.root = os.path.realpath(args.root)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
