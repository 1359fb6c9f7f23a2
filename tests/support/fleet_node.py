#!/usr/bin/env python3
"""The node side of kiln-fleet's integration tests, run through the real sshd the test
starts: which node a session is for comes from SSH_CONNECTION (the address the client
dialled: every node has an address of its own on 127.0.0.0/8). Each node is a directory:

  disk.img   an A/B disk image file (real GPT, kiln-boot ext4 with a real grubenv)
  booted     the slot the node runs ("A" or "B")
  bootid     its boot id, new at every emulated boot
  health     "good": the booted system's kiln-mark-good.service confirms the slot;
             anything else: it never does (the slot stays on trial)
  root/      the node's file system: DC/OS state, the agent's id in
             var/lib/mesos/slave/meta/slaves/latest
  commands.log   every command run here, one per line (and all nodes' in CONFIG's "log")

fleet_node.py CONFIG kiln-node ARGS...   the real kiln-node on this node's disk
                                         (--disk, --booted; --trust for a reimage,
                                         --root for a wipe)
fleet_node.py CONFIG bootid              the boot id
fleet_node.py CONFIG reboot              a reboot: GRUB's choice from the grubenv (kiln-node's
        own prediction of kiln's grub.cfg) and, for a trial slot, its tries decremented and
        saved into the grubenv as the script does; then the booted system: the mark-good service,
        and the Mesos agent, which registers with its recorded id, or with a new one when the
        wipe removed it or its master shut it down (the fake master holds a registration while
        the machine is DOWN)
"""
import json
import os
import subprocess
import sys
import urllib.request
import uuid


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.replace(path + ".tmp", path)


def grub_save_env(disk, assignments):
    """What GRUB's save_env does at boot: kiln's grub.cfg saves a trial slot's decremented
    tries into the grubenv on kiln-boot. Done here on the disk image file: kiln-boot's
    bytes out, the block edited with grub-editenv, written back with debugfs, and back in."""
    table = json.loads(subprocess.run(["sfdisk", "--json", disk], check=True, capture_output=True,
                                      text=True).stdout)["partitiontable"]
    part = next(p for p in table["partitions"] if p.get("name") == "kiln-boot")
    offset, size = part["start"] * table["sectorsize"], part["size"] * table["sectorsize"]
    work = disk + ".grub"
    os.makedirs(work, exist_ok=True)
    fs_image, env = os.path.join(work, "boot.fs"), os.path.join(work, "grubenv")
    with open(disk, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    with open(fs_image, "wb") as f:
        f.write(data)
    if os.path.exists(env):
        os.remove(env)
    subprocess.run(["debugfs", "-R", "dump /grub/grubenv " + env, fs_image], check=True, capture_output=True)
    subprocess.run(["grub-editenv", env, "set"] + ["%s=%s" % kv for kv in assignments.items()], check=True)
    subprocess.run(["debugfs", "-w", "-R", "rm /grub/grubenv", fs_image], check=True, capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", "write %s /grub/grubenv" % env, fs_image], check=True,
                   capture_output=True)
    with open(fs_image, "rb") as f:
        data = f.read()
    with open(disk, "r+b") as f:
        f.seek(offset)
        f.write(data)


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
    return json.loads(data) if data else {}


def main():
    cfg = json.load(open(sys.argv[1]))
    command, args = sys.argv[2], sys.argv[3:]
    ip = os.environ.get("SSH_CONNECTION", "").split()[2]
    node = cfg["nodes"][ip]
    d = node["dir"]
    for log, prefix in ((os.path.join(d, "commands.log"), ""), (cfg["log"], node["host"] + " ")):
        with open(log, "a") as f:
            f.write(prefix + " ".join([command] + args) + "\n")
    booted = read(os.path.join(d, "booted"), "A")
    kiln_node = [cfg["kiln_node"], "--disk", os.path.join(d, "disk.img"), "--booted", booted]
    if command == "kiln-node":
        extra = []
        if "reimage" in args:
            extra = ["--trust", cfg["trust"]]
        if "wipe" in args:
            extra = ["--root", os.path.join(d, "root")]
        os.execv(kiln_node[0], kiln_node + args + extra)
    if command == "bootid":
        print(read(os.path.join(d, "bootid")))
        return 0
    if command == "reboot":
        shut_down = False
        if node["role"] != "master":
            shut_down = post(cfg["master"] + "/fake/reboot", {"hostname": node["host"]}).get("shut_down", False)
        status = json.loads(subprocess.run(kiln_node + ["--json", "status"], check=True,
                                           capture_output=True, text=True).stdout)
        nb = status["next_boot"]
        slot = nb["slot"]
        if nb["reason"] == "trial":
            grub_save_env(os.path.join(d, "disk.img"), {"kiln_%s_tries" % slot: nb["tries_after"]})
        write(os.path.join(d, "booted"), slot)
        write(os.path.join(d, "bootid"), str(uuid.uuid4()))
        if read(os.path.join(d, "health")) == "good":
            subprocess.run([cfg["kiln_node"], "--disk", os.path.join(d, "disk.img"), "--booted", slot, "mark-good"],
                           check=True, capture_output=True)
        if node["role"] == "master":
            return 0
        id_file = os.path.join(d, "root/var/lib/mesos/slave/meta/slaves/latest")
        if shut_down and os.path.exists(id_file):
            os.remove(id_file)  # an agent its master shut down forgets its id
        agent_id = read(id_file)
        if not agent_id:
            agent_id = "S-" + uuid.uuid4().hex[:12]
            write(id_file, agent_id)
        post(cfg["master"] + "/fake/boot", {"hostname": node["host"], "agent_id": agent_id})
        return 0
    print("fleet_node.py: unknown command " + command, file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main())
