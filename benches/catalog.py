#!/usr/bin/env python3
"""Catalog zones at scale (RFC 9432): a tandem consumer and a Knot consumer
(`catalog-role: interpret`) of one catalog of 10,000 small member zones, in
turn, several rounds, in one run (see ../../shared/PEERS.md).

The primary is NSD (it starts 10,000 zones in about a second and is not what
is measured): 10,000 + a few spare zone files of ~10 records each and a
catalog zone (version "2", one PTR per member under `zones`) listing the
10,000. For each consumer, each round:

1. provision: start it with an empty data directory; the time until the
   catalog is transferred (its SOA answered with the catalog's serial; Knot
   refuses queries for a catalog it interprets, so `knotc zone-status`) and
   until every member answers its SOA authoritatively (AA, NOERROR, the SOA
   in the answer), found by UDP sweeps over the names still missing (one
   socket, a window of queries in flight, every 50 ms or 2 % of the time so
   far, whichever is longer: the sweeps are work for the server too); RSS
   of the process tree then, and per member: (RSS - RSS of the same server
   serving only an unreachable catalog) / members;
2. from disk: stop it, stop the primary (SIGSTOP), start it again with its
   data kept: time from start until every member answers;
3. one change: the primary running again, one member added to the catalog
   (the file rewritten with a new serial, NSD reloads it on SIGHUP and sends
   NOTIFY); the time from the edit until the primary serves it and until
   the new member answers on the consumer (both asked every ms), and the
   consumer's CPU time (its threads' schedstat) from the edit until 1 s
   after that, less 1 s of its idle CPU; the consumer is restarted with the
   primary up first (the refreshes that failed in step 2 would otherwise
   retry during the change) and the change is made once it has been quiet
   (under 20 ms of CPU per 0.5 s) for 3 s.

usage: benches/catalog.py [--members 10000] [--rounds 2] [--only tandem|knot] [--dir /var/tmp]
Needs: nsd, knot (Debian packages); builds tandem --release.
"""
import argparse
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

CATALOG = "cat.bench."
SPARE = 20  # member zones the primary serves beyond the catalog's, to add


def member(i):
    return f"m{i}.catbench."


def zone_text(name, serial, body):
    return (f"$ORIGIN {name}\n$TTL 3600\n@ SOA ns1.{name} hostmaster.{name} {serial} 3600 2 1209600 300\n"
            f"@ NS ns1\n@ NS ns2\n{body}")


def member_zone(i):
    return zone_text(member(i), 1, (
        f"ns1 A 192.0.2.1\nns2 A 192.0.2.2\nwww A 192.0.2.{i % 250 + 3}\nwww AAAA 2001:db8::{i % 65535:x}\n"
        f"@ MX 10 mail\nmail A 192.0.2.9\n@ TXT \"member {i}\"\nftp CNAME www\n"))


def catalog_text(serial, members):
    body = "version TXT \"2\"\n" + "".join(f"id{i}.zones PTR {member(i)}\n" for i in members)
    return f"$ORIGIN {CATALOG}\n$TTL 0\n@ SOA invalid. invalid. {serial} 3600 2 1209600 0\n@ NS invalid.\n{body}"


def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def soa_query(qid, name):
    return qid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + wire(name) + b"\x00\x06\x00\x01"


def soa_serial(msg):
    """The SOA serial of an authoritative NOERROR answer, else None."""
    if len(msg) < 12 or msg[3] & 0xF or not msg[2] & 0x04 or int.from_bytes(msg[6:8], "big") == 0:
        return None
    i = bench.skip_name(msg, 12) + 4
    if int.from_bytes(msg[bench.skip_name(msg, i):bench.skip_name(msg, i) + 2], "big") != 6:
        return None
    i = bench.skip_name(msg, i) + 10
    i = bench.skip_name(msg, bench.skip_name(msg, i))
    return int.from_bytes(msg[i:i + 4], "big")


class Sweeper:
    """Asks the SOA of every name not yet answered, over one UDP socket with
    `window` queries in flight, every `every` seconds; stops the clock at
    the sweep in which the last one answered."""

    def __init__(self, port, names, every=0.05, window=256):
        self.port, self.names, self.every, self.window = port, names, every, window
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.connect(("127.0.0.1", port))
        self.queries = [soa_query(i, n) for i, n in enumerate(names)]

    def sweep(self, todo, want=None):
        """One pass over `todo` (indices); returns those that answered."""
        done, pending = set(), list(todo)
        inflight = 0
        pos = 0
        while pos < len(pending) or inflight:
            while pos < len(pending) and inflight < self.window:
                try:
                    self.sock.send(self.queries[pending[pos]])
                except OSError:  # refused: nothing listening yet
                    pos = len(pending)
                    break
                pos += 1
                inflight += 1
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                break  # the rest are lost or slow; next sweep
            while True:
                try:
                    msg = self.sock.recv(4096, socket.MSG_DONTWAIT)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                inflight -= 1
                qid = int.from_bytes(msg[:2], "big")
                s = soa_serial(msg)
                if s is not None and (want is None or s == want.get(qid, s)):
                    done.add(qid)
        return done

    def wait(self, start, timeout, want=None, proc=None, probe=None):
        """Seconds from `start` until every name answered (`want`: index ->
        serial required). `probe`: called before each sweep until it returns
        true; its time is in `self.probed`."""
        todo = set(range(len(self.names)))
        last = None
        self.probed = None
        while todo:
            t = time.monotonic()
            if probe is not None and self.probed is None and probe():
                self.probed = time.monotonic() - start
            if t - start > timeout:
                raise SystemExit(f"{len(todo)} of {len(self.names)} never answered on port {self.port}, "
                                 f"e.g. {[self.names[i] for i in sorted(todo)[:3]]}")
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"server on port {self.port} exited, rc {proc.returncode}")
            got = self.sweep(sorted(todo), want)
            now = time.monotonic()
            if got:
                last = now
            todo -= got
            if todo:
                # Every 50 ms, or 2 % of the time so far: 10,000 queries a
                # sweep are work for the server measured too.
                every = max(self.every, 0.02 * (time.monotonic() - start))
                time.sleep(max(0.0, every - (time.monotonic() - t)))
        return last - start


# ---- the primary -------------------------------------------------------------

class Primary:
    def __init__(self, workdir, members, consumers):
        self.dir = os.path.join(workdir, "primary")
        os.makedirs(self.dir, exist_ok=True)
        self.port = bench.free_port()
        self.serial = 1
        self.cat_file = os.path.join(self.dir, "catalog.zone")
        for i in range(members + SPARE):
            with open(os.path.join(self.dir, f"{member(i)}zone"), "w") as f:
                f.write(member_zone(i))
        self.write_catalog(range(members))
        notify = "".join(f"  notify: 127.0.0.1@{p} NOKEY\n" for p in consumers)
        zones = [f"zone:\n  name: {CATALOG}\n  zonefile: {self.cat_file}\n  provide-xfr: 127.0.0.0/8 NOKEY\n{notify}"]
        zones += [f"zone:\n  name: {member(i)}\n  zonefile: {self.dir}/{member(i)}zone\n  provide-xfr: 127.0.0.0/8 NOKEY\n"
                  for i in range(members + SPARE)]
        conf = os.path.join(self.dir, "nsd.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
  ip-address: 127.0.0.1@{self.port}
  port: {self.port}
  username: ""
  chroot: ""
  database: ""
  zonelistfile: {self.dir}/zone.list
  xfrdfile: {self.dir}/xfrd.state
  pidfile: {self.dir}/nsd.pid
  logfile: {self.dir}/nsd.log
  server-count: 1
  tcp-count: 1000
  xfrd-reload-timeout: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  rrl-size: 1000
  verbosity: 1
remote-control:
  control-enable: no
""" + "".join(zones))
        self.server = bench.Server("nsd-primary", ["nsd", "-d", "-c", conf], self.port, self.dir)
        t = Sweeper(self.port, [CATALOG] + [member(i) for i in range(members + SPARE)]).wait(
            time.monotonic(), 120, proc=self.server.proc)
        print(f"primary (NSD) serves {members + SPARE} members and the catalog after {t:.1f} s", flush=True)

    def write_catalog(self, members):
        tmp = self.cat_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(catalog_text(self.serial, members))
        os.rename(tmp, self.cat_file)

    def publish(self, members, consumer_port=None, name=None):
        """A new catalog version listing `members`. Returns the seconds from
        the edit until the primary serves it and, given a consumer and a
        member name, until that consumer serves that member (both asked
        every millisecond)."""
        self.serial += 1
        mine = Sweeper(self.port, [CATALOG])
        theirs = Sweeper(consumer_port, [name]) if name else None
        t0 = time.monotonic()
        self.write_catalog(members)
        self.signal(signal.SIGHUP, all_=False)
        at_primary = at_consumer = None
        while at_primary is None or (theirs and at_consumer is None):
            if time.monotonic() - t0 > 60:
                raise SystemExit(f"catalog serial {self.serial} not served within 60 s")
            if at_primary is None and mine.sweep([0], {0: self.serial}):
                at_primary = time.monotonic() - t0
            if theirs and at_consumer is None and theirs.sweep([0]):
                at_consumer = time.monotonic() - t0
            time.sleep(0.001)
        return at_primary, at_consumer

    def signal(self, sig, all_=True):
        pids = bench.tree(self.server.proc.pid) if all_ else [self.server.proc.pid]
        for p in pids:
            try:
                os.kill(p, sig)
            except OSError:
                pass


# ---- the consumers -----------------------------------------------------------

def tandem_consumer(d, port, primary_port, binary, catalog_primary=None):
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "tandem.toml")
    with open(cfg, "w") as f:
        f.write(f"""[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{d}/var"
udp_workers = 2
log_level = "warn"
[[catalog]]
name = "{CATALOG}"
role = "consumer"
primaries = ["127.0.0.1:{catalog_primary or primary_port}"]
allow_notify = ["127.0.0.0/8"]
min_refresh = 1
min_retry = 1
[catalog.defaults]
allow_notify = ["127.0.0.0/8"]
min_retry = 1
""")
    return bench.Server("tandem", [binary, "serve", "--config", cfg], port, d)


def knot_consumer(d, port, primary_port, binary, catalog_primary=None):
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    conf = os.path.join(d, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  rundir: {d}
  listen: 127.0.0.1@{port}
  udp-workers: 2
  tcp-workers: 2
  background-workers: 2
database:
  storage: {d}/db
control:
  listen: {d}/knot.sock
log:
  - target: stderr
    any: warning
remote:
  - id: primary
    address: 127.0.0.1@{primary_port}
  - id: catprimary
    address: 127.0.0.1@{catalog_primary or primary_port}
acl:
  - id: notify
    address: 127.0.0.0/8
    action: notify
template:
  - id: default
    storage: {d}/zones
    retry-min-interval: 1
  - id: member
    storage: {d}/zones
    master: primary
    acl: notify
    retry-min-interval: 1
zone:
  - domain: {CATALOG}
    master: catprimary
    acl: notify
    catalog-role: interpret
    catalog-template: member
""")
    return bench.Server("knot", ["knotd", "-c", conf], port, d)


CONSUMERS = {"tandem": tandem_consumer, "knot": knot_consumer}


def start(kind, d, port, primary_port, binary):
    """Starts a consumer once its port is free (Knot cannot bind it while
    connections of the one just stopped linger)."""
    deadline = time.monotonic() + 120
    while True:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"port {port} still in use")
            time.sleep(0.1)
        finally:
            t.close()
    return CONSUMERS[kind](d, port, primary_port, binary)


def cpu_ns(pid):
    """CPU time (s) of the live threads of a process tree, in nanoseconds'
    resolution (/proc's utime+stime count 10 ms ticks)."""
    total = 0
    for p in bench.tree(pid):
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def catalog_loaded(kind, d, port, serial):
    """Does the consumer hold the catalog's version `serial`? (Knot refuses
    queries for a catalog it interprets: its control socket says.)"""
    if kind == "knot":
        r = subprocess.run(["knotc", "-s", os.path.join(d, "knot.sock"), "zone-status", CATALOG],
                           capture_output=True, text=True)
        return f"serial: {serial} " in r.stdout + " "
    return bool(Sweeper(port, [CATALOG]).sweep([0], {0: serial}))


def rss_mb(pid):
    return bench.memory_mb(pid)[0]


def empty_rss(kind, workdir, binary):
    """RSS of the consumer serving nothing but waiting for a catalog whose
    primary does not answer."""
    d = os.path.join(workdir, f"{kind}-empty")
    s = CONSUMERS[kind](d, bench.free_port(), bench.free_port(), binary)
    time.sleep(2)
    rss = rss_mb(s.proc.pid)
    s.stop()
    shutil.rmtree(d, ignore_errors=True)
    return rss


def one_round(kind, rnd, primary, members, port, workdir, binary, empty):
    d = os.path.join(workdir, f"{kind}-{rnd}")
    shutil.rmtree(d, ignore_errors=True)
    names = [member(i) for i in range(members)]
    # 1. provision from empty
    s = start(kind, d, port, primary.port, binary)
    sw = Sweeper(port, names)
    total = sw.wait(s.started, 900, proc=s.proc, probe=lambda: catalog_loaded(kind, d, port, primary.serial))
    catalog_at = sw.probed
    time.sleep(1)
    rss = rss_mb(s.proc.pid)
    cpu_provision = bench.cpu_seconds(s.proc.pid)
    per_member_kb = (rss - empty) * 1024 / members
    # Files it keeps by then (each one an inode to create: on this ext4
    # that alone costs about 0.5 ms of CPU, see README).
    files = sum(len(f) for _, _, f in os.walk(d))
    s.stop()
    # 2. from disk, the primary stopped
    primary.signal(signal.SIGSTOP)
    try:
        s = start(kind, d, port, primary.port, binary)
        disk = Sweeper(port, names).wait(s.started, 900, proc=s.proc)
        disk_rss = rss_mb(s.proc.pid)
    finally:
        primary.signal(signal.SIGCONT)
    # Started again with the primary up: refreshes that failed while it was
    # stopped wait on timeouts, quiet for seconds and then busy, which
    # would land in the change's CPU. The change is timed once it has been
    # quiet (under 20 ms of CPU per 0.5 s) for 3 s in a row.
    s.stop()
    s = start(kind, d, port, primary.port, binary)
    Sweeper(port, names).wait(s.started, 900, proc=s.proc)
    quiet_by = time.monotonic() + 120
    quiet = 0
    while quiet < 6 and time.monotonic() < quiet_by:
        quiet = quiet + 1 if cpu_idle(s.proc.pid, 0.5) <= 0.02 else 0
    # 3. one member added
    new = members + rnd
    c0 = cpu_ns(s.proc.pid)
    to_primary, added = primary.publish(list(range(members)) + [new], port, member(new))
    time.sleep(1)
    cpu_change = cpu_ns(s.proc.pid) - c0
    idle = cpu_idle(s.proc.pid, 1.0)
    s.stop()
    # back to the base catalog for the next consumer (which starts empty)
    primary.publish(list(range(members)))
    # The round's files stay until the end of the run: deleting 10,000
    # files makes the next round's file creation scan past them (see --dir).
    r = dict(catalog=catalog_at, all=total, cpu=cpu_provision, rss=rss, per_member_kb=per_member_kb, files=files, disk=disk,
             disk_rss=disk_rss, primary_reload=to_primary, added=added, cpu_change=cpu_change - idle)
    print(f"  round {rnd + 1} {kind:6} catalog {r['catalog']:.2f} s, all {members} serving {total:.2f} s "
          f"(CPU {cpu_provision:.1f} s), RSS {rss:.0f} MB = {per_member_kb:.1f} kB/member, {files} files; from disk {disk:.2f} s "
          f"(RSS {disk_rss:.0f} MB); +1 member: primary serves it {to_primary * 1000:.0f} ms, consumer {added * 1000:.0f} ms, "
          f"CPU {cpu_change * 1000:.0f} ms (idle-corrected, idle {idle * 1000:.0f} ms/s)", flush=True)
    return r


def cpu_idle(pid, seconds):
    """CPU the server spends over `seconds` doing nothing asked of it."""
    c0 = cpu_ns(pid)
    time.sleep(seconds)
    return cpu_ns(pid) - c0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", choices=list(CONSUMERS))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    # Where the servers keep their files. Not /tmp by default: on this
    # machine's ext4 (no journal) /tmp's inode groups are full of files the
    # test suite deleted minutes ago, and allocating an inode scans past
    # each of them: 10,000 files cost 4.7 s of CPU to create there, 0.42 s
    # in /var/tmp (a Python loop, same disk).
    ap.add_argument("--dir", default="/var/tmp", help="parent of the work directory")
    args = ap.parse_args()
    for tool in ["nsd", "knotd"]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install nsd knot")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=bench.ROOT, check=True)
    binary = os.path.join(bench.ROOT, "target", "release", "tandem")
    kinds = [args.only] if args.only else list(CONSUMERS)
    workdir = tempfile.mkdtemp(prefix="tandem-catbench-", dir=args.dir)
    ports = {k: bench.free_port() for k in kinds}
    primary = Primary(workdir, args.members, ports.values())
    results = {k: [] for k in kinds}
    try:
        empties = {k: empty_rss(k, workdir, binary) for k in kinds}
        print("empty servers' RSS: " + ", ".join(f"{k} {v:.1f} MB" for k, v in empties.items()), flush=True)
        for rnd in range(args.rounds):
            order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
            for k in order:
                results[k].append(one_round(k, rnd, primary, args.members, ports[k], workdir, binary, empties[k]))
    finally:
        primary.server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in results.items()}
    base = med.get("knot") or next(iter(med.values()))
    print(f"\n{args.members} member zones of 10 records from one catalog (NSD primary), median of {args.rounds} rounds, "
          "consumers in turn")
    print("| consumer | catalog transferred | all members serving | time / Knot | CPU to provision | RSS | "
          "per member | memory / Knot | start from disk to all serving | time / Knot | one member added: "
          "edit to serving | time / Knot | consumer CPU | CPU / Knot |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, m in med.items():
        print(f"| {k} | {m['catalog']:.2f} s | {m['all']:.2f} s | {m['all'] / base['all']:.2f} | {m['cpu']:.1f} s | "
              f"{m['rss']:.0f} MB | {m['per_member_kb']:.1f} kB | {m['per_member_kb'] / base['per_member_kb']:.2f} | "
              f"{m['disk']:.2f} s | {m['disk'] / base['disk']:.2f} | {m['added'] * 1000:.0f} ms | "
              f"{m['added'] / base['added']:.2f} | {m['cpu_change'] * 1000:.0f} ms | "
              f"{m['cpu_change'] / max(base['cpu_change'], 1e-9):.2f} |")
    print(f"(empty servers' RSS: " + ", ".join(f"{k} {v:.1f} MB" for k, v in empties.items())
          + f"; the primary (NSD, SIGHUP) served the edited catalog a median "
          f"{statistics.median(r['primary_reload'] for v in results.values() for r in v) * 1000:.0f} ms after the edit)")


if __name__ == "__main__":
    main()
