#!/usr/bin/env python3
"""A stand-in for what kiln-node mark-good --when-healthy asks a DC/OS node, on loopback.

HTTP, as a Mesos master (:5050) or agent (:5051) answers it:
  /metrics/snapshot    a JSON object, metric name -> number (floats, as Mesos writes
                       them), read from --metrics FILE at every request so a test can
                       change the values while kiln-node runs. A missing file is a
                       snapshot without the metric.
  anything else        404
ZooKeeper (:2181), plain TCP, one four-letter word per connection:
  --zk imok            answers "ruok" with "imok" and closes, as ZooKeeper 3.4 does
  --zk silent          accepts, reads, never answers (a hung server)

It binds 127.0.0.1 only, on free ports, and prints "PORT <http> ZK <zk> CLOSED <port>"
when ready; CLOSED is a port that was free a moment ago and has no listener (for
"connection refused").
"""
import argparse
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a real snapshot holds besides the metric the test sets (a few of Mesos's own).
AGENT = {"slave/uptime_secs": 120.5, "slave/tasks_running": 0.0, "system/load_1min": 0.1, "slave/registered": 0.0}
MASTER = {"master/uptime_secs": 120.5, "master/elected": 1.0, "registrar/log/recovered": 0.0,
          "master/slaves_active": 0.0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path.split("?")[0] != "/metrics/snapshot":
            return self.answer(404, b"not found\n", "text/plain")
        snapshot = dict(self.server.base)
        try:
            with open(self.server.metrics) as f:
                snapshot.update(json.load(f))
        except FileNotFoundError:
            pass
        body = json.dumps({k: v for k, v in snapshot.items() if v is not None}).encode()
        self.answer(200, body, "application/json")

    def answer(self, code, body, kind):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def zookeeper(listener, mode):
    held = []  # silent mode keeps its connections open
    while True:
        conn, _ = listener.accept()
        word = conn.recv(4)
        if mode == "silent":
            held.append(conn)
            continue
        if word == b"ruok":
            conn.sendall(b"imok")
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["master", "agent"], required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--zk", choices=["imok", "silent"], default="imok")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.base = MASTER if args.role == "master" else AGENT
    server.metrics = args.metrics
    zk = socket.socket()
    zk.bind(("127.0.0.1", 0))
    zk.listen(8)
    threading.Thread(target=zookeeper, args=(zk, args.zk), daemon=True).start()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    print("PORT %d ZK %d CLOSED %d" % (server.server_address[1], zk.getsockname()[1], closed), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
