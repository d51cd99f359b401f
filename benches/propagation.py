#!/usr/bin/env python3
"""Save -> served: how long from an operator's save of a zone file on the
primary until every secondary serves the new serial.

Two trios in one run, edits interleaved: a tandem primary with two tandem
secondaries (the primary notices the save itself), and a Knot primary with
two Knot secondaries (`knotc zone-reload` after each save, as a Knot
operator would run it; `zonefile-load: difference` so Knot sends IXFR).
Each edit changes one record and bumps the SOA serial in the file, is
written to a temporary file and renamed into place (what editors do), and
the clock runs from just before the rename until both secondaries answer
the new serial (UDP SOA queries every millisecond).

usage: benches/propagation.py [--names 10000 100000] [--edits 20]
Needs: knot, knot-dnsutils (Debian packages); builds tandem --release.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ORIGIN = bench.ORIGIN


def soa_query(qid):
    q = qid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in ORIGIN.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x06\x00\x01"


def serial_in(msg):
    """The SOA serial in an answer whose first answer record is the SOA."""
    if len(msg) < 12 or msg[3] & 0xF or int.from_bytes(msg[6:8], "big") == 0:
        return None
    i = bench.skip_name(msg, 12) + 4  # question
    i = bench.skip_name(msg, i) + 10  # owner, type, class, TTL, rdlength
    i = bench.skip_name(msg, bench.skip_name(msg, i))  # mname, rname
    return int.from_bytes(msg[i:i + 4], "big")


def wait_all(addrs, serial, timeout=30, poll=0.0003):
    """Seconds until every (ip, port) in `addrs` answers `serial`. All that
    have not yet are asked again every `poll` seconds; answers come back
    within a fraction of a millisecond on loopback, so the default stops the
    clock close to when it should."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    waiting = set(addrs)
    qid = 1
    while waiting:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{len(waiting)} servers never served serial {serial}: {sorted(waiting)[:5]}")
        for a in list(waiting):
            qid = (qid + 1) & 0xFFFF
            s.sendto(soa_query(qid), a)
        deadline = time.monotonic() + poll
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                msg, a = s.recvfrom(4096)
            except (BlockingIOError, socket.timeout):
                break
            if serial_in(msg) == serial:
                waiting.discard(a)
    return time.monotonic() - start


def zone_text(base, serial, edit):
    head = f"$ORIGIN {ORIGIN}\n$TTL 3600\n@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n"
    return head + base + f"edit A 198.51.100.{edit % 250}\n"


def save(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    t0 = time.monotonic()
    os.rename(tmp, path)
    return t0


class Trio:
    def __init__(self, name, workdir, zonefile):
        self.name, self.workdir, self.zonefile = name, workdir, zonefile
        self.procs = []
        self.ports = []

    def addrs(self):
        """The secondaries' addresses."""
        return [("127.0.0.1", p) for p in self.ports]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def tandem_trio(workdir, zonefile, binary):
    t = Trio("tandem", workdir, zonefile)
    ports = [bench.free_port() for _ in range(3)]
    for i, port in enumerate(ports):
        d = os.path.join(workdir, f"tandem{i}")
        os.makedirs(d, exist_ok=True)
        if i == 0:
            notify = ", ".join(f'"127.0.0.1:{p}"' for p in ports[1:])
            zone = (f'role = "primary"\nfile = "{zonefile}"\nnotify = [{notify}]\n'
                    f'serial_policy = "keep"\n')
        else:
            zone = f'role = "secondary"\nprimaries = ["127.0.0.1:{ports[0]}"]\n'
        with open(os.path.join(d, "t.toml"), "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{d}/var"\nudp_workers = 1\n'
                    f'log_level = "warn"\n[[zone]]\nname = "{ORIGIN}"\n{zone}')
        log = open(os.path.join(d, "log"), "w")
        t.procs.append(subprocess.Popen([binary, "serve", "--config", "t.toml"], cwd=d, stdout=log,
                                        stderr=subprocess.STDOUT))
    t.ports = ports[1:]
    t.reload = None
    return t


def knot_trio(workdir, zonefile):
    t = Trio("knot", workdir, zonefile)
    ports = [bench.free_port() for _ in range(3)]
    confs = []
    for i, port in enumerate(ports):
        d = os.path.join(workdir, f"knot{i}")
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        if i == 0:
            remotes = "".join(f"  - id: s{j}\n    address: 127.0.0.1@{p}\n" for j, p in enumerate(ports[1:]))
            zone = (f"remote:\n{remotes}acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer\n"
                    f"zone:\n  - domain: {ORIGIN}\n    file: {zonefile}\n    notify: [s0, s1]\n    acl: xfr\n"
                    f"    zonefile-load: difference\n    journal-content: changes\n    zonefile-sync: -1\n")
        else:
            zone = (f"remote:\n  - id: p\n    address: 127.0.0.1@{ports[0]}\n"
                    f"acl:\n  - id: n\n    address: 127.0.0.1\n    action: notify\n"
                    f"zone:\n  - domain: {ORIGIN}\n    master: p\n    acl: n\n    zonefile-sync: -1\n"
                    f"    journal-content: changes\n")
        conf = os.path.join(d, "knot.conf")
        with open(conf, "w") as f:
            f.write(f"server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\n  udp-workers: 1\n  tcp-workers: 1\n"
                    f"  background-workers: 1\ndatabase:\n  storage: {d}/db\nlog:\n  - target: stderr\n"
                    f"    any: warning\ntemplate:\n  - id: default\n    storage: {d}\n{zone}")
        confs.append(conf)
        log = open(os.path.join(d, "log"), "w")
        t.procs.append(subprocess.Popen(["knotd", "-c", conf], cwd=d, stdout=log, stderr=subprocess.STDOUT))
    t.ports = ports[1:]
    t.reload = ["knotc", "-c", confs[0], "zone-reload", ORIGIN]
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--edits", type=int, default=20)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=bench.ROOT, check=True)
    binary = os.path.join(bench.ROOT, "target", "release", "tandem")
    for names in args.names:
        with tempfile.TemporaryDirectory() as w:
            gen = os.path.join(w, "gen.zone")
            subprocess.run([sys.executable, os.path.join(bench.ROOT, "benches", "zonegen.py"), str(names), ORIGIN,
                            gen], check=True)
            # The generated body without its SOA line: edits rewrite the head.
            body = "".join(line for line in open(gen) if not line.startswith(("$", "@ SOA")))
            body = "@ NS ns1\n" + body
            trios, files = [], {}
            for name in ("tandem", "knot"):
                d = os.path.join(w, name)
                os.makedirs(d)
                files[name] = os.path.join(d, "zone")
                with open(files[name], "w") as f:
                    f.write(zone_text(body, 1, 0))
                trios.append(tandem_trio(d, files[name], binary) if name == "tandem" else knot_trio(d, files[name]))
            try:
                for t in trios:
                    wait_all(t.addrs(), 1, timeout=120)
                times = {t.name: [] for t in trios}
                for e in range(1, args.edits + 1):
                    for t in trios:
                        t0 = save(files[t.name], zone_text(body, 1 + e, e))
                        if t.reload:
                            subprocess.run(t.reload, check=True, capture_output=True)
                        wait_all(t.addrs(), 1 + e)
                        times[t.name].append(time.monotonic() - t0)
                        time.sleep(0.2)
            finally:
                for t in trios:
                    t.stop()
            print(f"\nSave -> both secondaries serving, {names:,}-name zone, {args.edits} edits")
            print("| trio | p50 | p95 | max |")
            print("|---|---|---|---|")
            for n, v in times.items():
                v = sorted(v)
                p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
                print(f"| {n} | {statistics.median(v) * 1e3:.1f} ms | {p95 * 1e3:.1f} ms | {v[-1] * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
