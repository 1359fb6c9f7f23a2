#!/usr/bin/env python3
"""A fake Mesos master for kiln-fleet's tests, on loopback: the operator API v1 calls
kiln-fleet makes, with JSON bodies shaped as mesos/v1/master/master.proto and
maintenance.proto define them, and the rules of the real master that a rolling reimage
runs into:

  POST /api/v1 (Content-Type and Accept application/json; "Authorization: token=T"
  when started with --token)
    GET_AGENTS                   agents with agent_info, active, deactivated, drain_info
    GET_MAINTENANCE_SCHEDULE     the schedule
    UPDATE_MAINTENANCE_SCHEDULE  replaces it; a machine twice, or a DOWN machine left
                                 out, is refused (400), as the master refuses them
    GET_MAINTENANCE_STATUS       draining_machines and down_machines
    START_MAINTENANCE            only machines in the schedule; they go DOWN: their
                                 agents are told to shut down and removed
    STOP_MAINTENANCE             only DOWN machines; they leave the schedule
    DRAIN_AGENT                  DRAINING, then DRAINED after --drain-seconds (a host in
                                 --never-drain stays DRAINING); deactivated; its
                                 max_grace_period must be {"seconds", "nanos"} (a
                                 google.protobuf.Duration), else 400
    REACTIVATE_AGENT             only a deactivated agent
    MARK_AGENT_GONE              removes the agent (shut down); its id can never register again
  Agents register as a node's boot makes them (the test's reboot script posts):
    POST /fake/reboot {"hostname"}              the agent disconnects (active false); the
        answer {"shut_down": true} when its master shut it down meanwhile (it forgets its id)
    POST /fake/boot {"hostname", "agent_id"}    the agent (re-)registers with this id,
        retried (as an agent does) until its machine is not DOWN; a gone or removed id is
        refused forever
    GET /fake/state                             everything, for the test's checks
  Each master's health for kiln-fleet's master checks (one process stands in for all):
    GET /metrics/snapshot?master=HOST   master/elected (1 for --leader), registrar/log/
                                        recovered (0 for a --not-recovered master)
    GET /exhibitor/v1/cluster/status    the --zk-host servers, serving (code 3) unless
                                        --zk-unhealthy
  ZooKeeper on the ZK port: "ruok" -> "imok".
  --fail-call TYPE:N: the Nth call of TYPE answers 503 (logged as "unavailable"), as a
  master failing over does.
  --redirect-to LOCATION: a master that is not the leader: every /api/v1 call is answered
  307 Temporary Redirect with that Location (logged as a "redirected" event).

Every call is appended to --log (JSON lines). Prints "PORT <http> ZK <zk>" when ready.
"""
import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def duration_ok(d):
    """A google.protobuf.Duration in Mesos's JSON: exactly seconds and nanos, integers."""
    return isinstance(d, dict) and set(d) == {"seconds", "nanos"} and \
        all(isinstance(d[k], int) and not isinstance(d[k], bool) for k in d) and 0 <= d["nanos"] < 10**9


class Master:
    def __init__(self, agents, drain_seconds, never_drain, log):
        # id -> {"id", "hostname", "active", "deactivated", "drain", "drain_at"}
        self.agents = {a["id"]: {"id": a["id"], "hostname": a["hostname"], "active": True,
                                 "deactivated": False, "drain": None, "drain_at": 0.0} for a in agents}
        self.windows = []
        self.down = set()  # hostnames
        self.gone = set()  # agent ids
        self.removed = set()  # agent ids the master removed (DOWN, gone): refused if they return
        self.shutdown_hosts = set()  # hosts whose agent was told to shut down
        self.pending = []  # [hostname, agent_id]
        self.refused = []  # [hostname, agent_id, why]
        self.drain_seconds = drain_seconds
        self.never_drain = set(never_drain)
        self.log = log
        self.calls = []
        self.counts = {}  # type -> calls so far
        self.fail_calls = set()  # "TYPE:N": the Nth call of TYPE answers 503

    # -- helpers --
    def shut_down(self, agent_id, why):
        """The master removes the agent and sends it a ShutdownMessage: an agent shut down
        by its master forgets its id (meta/slaves/latest), so it comes back as a new one."""
        a = self.agents.pop(agent_id)
        self.removed.add(agent_id)
        self.shutdown_hosts.add(a["hostname"])
        self.record({"event": "removed", "agent_id": agent_id, "hostname": a["hostname"], "why": why})

    def record(self, entry):
        self.calls.append(entry)
        with open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def scheduled_hosts(self):
        return [m.get("hostname") for w in self.windows for m in w.get("machine_ids", [])]

    def settle(self):
        now = time.monotonic()
        for a in self.agents.values():
            if a["drain"] == "DRAINING" and a["hostname"] not in self.never_drain and now >= a["drain_at"]:
                a["drain"] = "DRAINED"
        still = []
        for host, agent_id in self.pending:
            if agent_id in self.gone or agent_id in self.removed:
                self.refused.append([host, agent_id, "gone" if agent_id in self.gone else "removed"])
                continue
            if host in self.down:
                still.append([host, agent_id])  # refused while DOWN; the agent retries
                continue
            if agent_id in self.agents:
                self.agents[agent_id]["active"] = True
            else:
                self.agents[agent_id] = {"id": agent_id, "hostname": host, "active": True,
                                         "deactivated": False, "drain": None, "drain_at": 0.0}
            self.record({"event": "registered", "hostname": host, "agent_id": agent_id})
        self.pending = still

    def agent_json(self, a):
        j = {"agent_info": {"id": {"value": a["id"]}, "hostname": a["hostname"], "port": 5051},
             "active": a["active"], "deactivated": a["deactivated"], "version": "1.13.0",
             "pid": "slave(1)@%s:5051" % a["hostname"], "registered_time": {"nanoseconds": 0}}
        if a["drain"]:
            j["drain_info"] = {"state": a["drain"], "config": {"mark_gone": False}}
        return j

    # -- the calls; each returns (status, body or None) --
    def call(self, req):
        kind = req.get("type")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if "%s:%d" % (kind, self.counts[kind]) in self.fail_calls:
            self.record({"event": "unavailable", "type": kind})
            return 503, "Service Unavailable: no leading master"
        self.settle()
        self.record({"call": kind, "request": req})
        handler = getattr(self, "do_" + str(kind), None)
        if handler is None:
            return 400, "Failed to validate master::Call: unknown type"
        return handler(req)

    def do_GET_AGENTS(self, req):
        return 200, {"type": "GET_AGENTS", "get_agents": {
            "agents": [self.agent_json(a) for a in self.agents.values()], "recovered_agents": []}}

    def do_GET_MAINTENANCE_SCHEDULE(self, req):
        return 200, {"type": "GET_MAINTENANCE_SCHEDULE",
                     "get_maintenance_schedule": {"schedule": {"windows": self.windows}}}

    def do_UPDATE_MAINTENANCE_SCHEDULE(self, req):
        schedule = req.get("update_maintenance_schedule", {}).get("schedule")
        if schedule is None:
            return 400, "Expecting 'update_maintenance_schedule.schedule' to be present"
        seen = set()
        for w in schedule.get("windows", []):
            if "unavailability" not in w or "nanoseconds" not in w["unavailability"].get("start", {}):
                return 400, "Window is missing its unavailability start"
            for m in w.get("machine_ids", []):
                if "hostname" not in m and "ip" not in m:
                    return 400, "A machine id needs a hostname or an ip"
                key = (m.get("hostname"), m.get("ip"))
                if key in seen:
                    return 400, "Machine '%s' appears more than once in the schedule" % (key,)
                seen.add(key)
        hosts = [h for h, _ in seen]
        for h in self.down:
            if h not in hosts:
                return 400, "Machine '%s' is deactivated and cannot be removed from the schedule" % h
        self.windows = schedule.get("windows", [])
        return 200, None

    def do_GET_MAINTENANCE_STATUS(self, req):
        draining = [{"id": m} for w in self.windows for m in w.get("machine_ids", [])
                    if m.get("hostname") not in self.down]
        down = [m for w in self.windows for m in w.get("machine_ids", []) if m.get("hostname") in self.down]
        return 200, {"type": "GET_MAINTENANCE_STATUS", "get_maintenance_status": {
            "status": {"draining_machines": draining, "down_machines": down}}}

    def machines(self, req, key):
        return [m.get("hostname") for m in req.get(key, {}).get("machines", [])]

    def do_START_MAINTENANCE(self, req):
        hosts = self.machines(req, "start_maintenance")
        for h in hosts:
            if h not in self.scheduled_hosts():
                return 400, "Machine '%s' is not part of a maintenance schedule" % h
            if h in self.down:
                return 400, "Machine '%s' is not in DRAINING mode" % h
        for h in hosts:
            self.down.add(h)
            # The machine's agents are told to shut down and removed (their tasks LOST).
            for agent_id in [i for i, a in self.agents.items() if a["hostname"] == h]:
                self.shut_down(agent_id, "Operator initiated 'Machine DOWN'")
        return 200, None

    def do_STOP_MAINTENANCE(self, req):
        hosts = self.machines(req, "stop_maintenance")
        for h in hosts:
            if h not in self.down:
                return 400, "Machine '%s' is not in DOWN mode" % h
        for h in hosts:
            self.down.discard(h)
            for w in self.windows:
                w["machine_ids"] = [m for m in w.get("machine_ids", []) if m.get("hostname") != h]
            self.windows = [w for w in self.windows if w["machine_ids"]]
        self.settle()
        return 200, None

    def agent_of(self, req, key):
        return req.get(key, {}).get("agent_id", {}).get("value")

    def do_DRAIN_AGENT(self, req):
        agent_id = self.agent_of(req, "drain_agent")
        grace = req.get("drain_agent", {}).get("max_grace_period")
        if agent_id not in self.agents:
            return 400, "Unknown agent %s" % agent_id
        if grace is not None and not duration_ok(grace):
            # The real master's JSON-to-protobuf knows a google.protobuf.Duration only as
            # {"seconds", "nanos"}: anything else is a malformed call here.
            return 400, "Failed to convert JSON into Call protobuf: max_grace_period %s" % json.dumps(grace)
        a = self.agents[agent_id]
        a["drain"] = "DRAINING"
        a["deactivated"] = True
        a["drain_at"] = time.monotonic() + self.drain_seconds
        return 200, None

    def do_REACTIVATE_AGENT(self, req):
        agent_id = self.agent_of(req, "reactivate_agent")
        a = self.agents.get(agent_id)
        if a is None:
            return 400, "Unknown agent %s" % agent_id
        if not a["deactivated"]:
            return 400, "Agent %s is already active" % agent_id
        a["deactivated"] = False
        a["drain"] = None
        return 200, None

    def do_MARK_AGENT_GONE(self, req):
        agent_id = self.agent_of(req, "mark_agent_gone")
        if agent_id in self.gone:
            return 200, None
        if agent_id not in self.agents:
            return 404, "Agent %s not found" % agent_id
        self.gone.add(agent_id)
        self.shut_down(agent_id, "Agent marked gone")
        return 200, None

    def state(self):
        self.settle()
        return {"agents": list(self.agents.values()), "windows": self.windows, "down": sorted(self.down),
                "gone": sorted(self.gone), "pending": self.pending, "refused": self.refused,
                "calls": [c.get("call") for c in self.calls if "call" in c]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > (1 << 20):
            raise ValueError("body too large")
        return json.loads(self.rfile.read(n) or b"{}")

    def answer(self, code, body, location=None):
        data = b"" if body is None else (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(code)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        master = self.server.master
        with LOCK:
            if self.path == "/fake/state":
                return self.answer(200, master.state())
            path, _, query = self.path.partition("?")
            if path in ("/metrics/snapshot", "/exhibitor/v1/cluster/status") and self.server.token and \
                    self.headers.get("Authorization") != "token=" + self.server.token:
                return self.answer(401, "Unauthorized")  # a strict cluster guards them too
            who = query.partition("master=")[2].split("&")[0]
            if path == "/metrics/snapshot":
                # ?master=HOST: that master's own snapshot (one process stands in for all).
                return self.answer(200, {"master/elected": 1.0 if who == self.server.leader else 0.0,
                                         "registrar/log/recovered": 0.0 if who in self.server.not_recovered else 1.0})
            if path == "/exhibitor/v1/cluster/status":
                return self.answer(200, [{"code": 1 if h in self.server.unhealthy else 3,
                                          "description": "not serving" if h in self.server.unhealthy else "serving",
                                          "hostname": h, "isLeader": h == self.server.leader}
                                         for h in self.server.zk_hosts])
        self.answer(404, "not found")

    def do_POST(self):
        master = self.server.master
        try:
            req = self.body()
        except ValueError as e:
            return self.answer(400, "Failed to parse body into JSON: %s" % e)
        with LOCK:
            if self.path == "/fake/reboot":
                for a in master.agents.values():
                    if a["hostname"] == req["hostname"]:
                        a["active"] = False
                master.record({"event": "rebooted", "hostname": req["hostname"]})
                shut = req["hostname"] in master.shutdown_hosts
                master.shutdown_hosts.discard(req["hostname"])
                return self.answer(200, {"shut_down": shut})
            if self.path == "/fake/boot":
                master.pending.append([req["hostname"], req["agent_id"]])
                master.settle()
                return self.answer(200, None)
            if self.path not in ("/api/v1", "/mesos/api/v1"):
                return self.answer(404, "not found")
            if self.server.redirect_to:
                # Not the leader: every call goes to the leader, as the real master sends it.
                master.record({"event": "redirected", "type": req.get("type"), "to": self.server.redirect_to})
                return self.answer(307, None, location=self.server.redirect_to)
            if self.headers.get("Content-Type") != "application/json":
                return self.answer(415, "Expecting 'Content-Type' of application/json")
            if "application/json" not in self.headers.get("Accept", ""):
                return self.answer(406, "Expecting 'Accept' to allow application/json")
            if self.server.token and self.headers.get("Authorization") != "token=" + self.server.token:
                return self.answer(401, "Unauthorized")
            code, body = master.call(req)
            self.answer(code, body)


def zookeeper(listener):
    while True:
        conn, _ = listener.accept()
        try:
            conn.settimeout(5)
            if conn.recv(4) == b"ruok":
                conn.sendall(b"imok")
        except OSError:
            pass
        finally:
            conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--agents", required=True, help="JSON file: [{id, hostname}]")
    p.add_argument("--log", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--drain-seconds", type=float, default=0.2)
    p.add_argument("--never-drain", action="append", default=[])
    p.add_argument("--leader", default="", help="the master whose snapshot says master/elected 1")
    p.add_argument("--zk-host", action="append", default=[], help="a ZooKeeper server Exhibitor lists")
    p.add_argument("--zk-unhealthy", action="append", default=[], help="a ZooKeeper Exhibitor says is not serving")
    p.add_argument("--not-recovered", action="append", default=[], help="a master whose log is not recovered")
    p.add_argument("--fail-call", action="append", default=[], help="TYPE:N: the Nth TYPE call answers 503 (a "
                   "master failing over)")
    p.add_argument("--redirect-to", default="", help="not the leader: every /api/v1 call answers 307 with this "
                   "Location (e.g. //127.0.0.1:PORT/api/v1)")
    a = p.parse_args()
    with open(a.agents) as f:
        agents = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.master = Master(agents, a.drain_seconds, a.never_drain, a.log)
    server.master.fail_calls = set(a.fail_call)
    server.token = a.token
    server.leader = a.leader
    server.zk_hosts = a.zk_host
    server.unhealthy = set(a.zk_unhealthy)
    server.not_recovered = set(a.not_recovered)
    server.redirect_to = a.redirect_to
    zk = socket.socket()
    zk.bind(("127.0.0.1", 0))
    zk.listen(16)
    threading.Thread(target=zookeeper, args=(zk,), daemon=True).start()
    print("PORT %d ZK %d" % (server.server_address[1], zk.getsockname()[1]), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
