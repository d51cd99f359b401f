#!/usr/bin/env python3
"""tandem against NSD and Knot, side by side in one run (see ../../shared/PEERS.md).

1. Query throughput: dnsperf on the same 10k-name zone and query mix, the
   servers interleaved over several rounds; reports qps and the server's own
   CPU time per answered query (utime+stime of its process tree).
2. Zone load: time from start to the first answer, peak RSS during the load
   and steady RSS after it, for a 1M-name zone (1.83M records); the servers
   interleaved over several rounds, medians, ratios to Knot. Then a tandem
   secondary of a tandem primary: start to answering from the AXFR'd zone.

Ratios are against NSD measured in the same run: absolute figures on these
shared 2-core machines move between runs, ratios much less.

usage: benches/bench.py [--names 10000] [--rounds 3] [--seconds 10]
                        [--big 1000000] [--load-rounds 3] [--skip-qps]
                        [--skip-load] [--skip-secondary]
Needs: nsd, knot, dnsperf, dig (Debian packages); builds tandem --release.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORIGIN = "bench.test."


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def tree(pid):
    """pid and all its descendants."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def memory_mb(pid):
    rss = pss = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                rss += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            with open(f"/proc/{p}/smaps_rollup") as f:
                pss += int(re.search(r"Pss:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return rss / 1024, pss / 1024


def answers(port, name=ORIGIN, qtype="SOA"):
    r = subprocess.run(
        ["dig", f"@127.0.0.1", "-p", str(port), name, qtype, "+norec", "+time=1", "+tries=1"],
        capture_output=True,
        text=True,
    )
    return "status: NOERROR" in r.stdout and "ANSWER: 0" not in r.stdout


class Server:
    def __init__(self, name, cmd, port, workdir):
        self.name, self.port = name, port
        self.log = open(os.path.join(workdir, f"{name}.log"), "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)

    def wait_ready(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited; see its log")
            if answers(self.port):
                return time.monotonic() - self.started
            time.sleep(0.05)
        raise SystemExit(f"{self.name} did not answer within {timeout}s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_tandem(workdir, zonefile, port, binary):
    cfg = os.path.join(workdir, "tandem.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{workdir}/tandem-var"\nudp_workers = 2\n'
                f'log_level = "warn"\n[[zone]]\nname = "{ORIGIN}"\nrole = "primary"\nfile = "{zonefile}"\n'
                f'allow_transfer = ["127.0.0.1"]\n')
    return Server("tandem", [binary, "serve", "--config", cfg], port, workdir)


def start_nsd(workdir, zonefile, port, zone_extra="", server_extra=""):
    """NSD in the foreground; `zone_extra` lines go into its zone,
    `server_extra` into its server section."""
    d = os.path.join(workdir, "nsd")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "nsd.conf"), "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  username: ""
  chroot: ""
  database: ""
  zonelistfile: {d}/zone.list
  xfrdfile: {d}/xfrd.state
  pidfile: {d}/nsd.pid
  logfile: {d}/nsd.log
  server-count: 2
  reuseport: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  rrl-size: 1000
  verbosity: 0
{server_extra}remote-control:
  control-enable: no
zone:
  name: {ORIGIN}
  zonefile: {zonefile}
  provide-xfr: 127.0.0.1 NOKEY
{zone_extra}""")
    return Server("nsd", ["nsd", "-d", "-c", os.path.join(d, "nsd.conf")], port, workdir)


def start_knot(workdir, zonefile, port, journal="    journal-content: none\n"):
    """Knot in the foreground, with a control socket (`.control`); `journal`
    are its template's journal (and zone-file loading) settings."""
    d = os.path.join(workdir, "knot")
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    with open(os.path.join(d, "knot.conf"), "w") as f:
        f.write(f"""server:
  rundir: {d}
  listen: 127.0.0.1@{port}
  udp-workers: 2
  tcp-workers: 1
  background-workers: 1
database:
  storage: {d}/db
control:
  listen: {d}/knot.sock
log:
  - target: stderr
    any: warning
acl:
  - id: xfr
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: {d}
    zonefile-sync: -1
{journal}zone:
  - domain: {ORIGIN}
    file: {zonefile}
    acl: xfr
""")
    s = Server("knot", ["knotd", "-c", os.path.join(d, "knot.conf")], port, workdir)
    s.control = os.path.join(d, "knot.sock")
    return s


STARTERS = {
    "tandem": lambda w, z, p, b: start_tandem(w, z, p, b),
    "nsd": lambda w, z, p, b: start_nsd(w, z, p),
    "knot": lambda w, z, p, b: start_knot(w, z, p),
}


def start_floor(workdir, port):
    """The raw responder of benches/floor: one fixed answer, no DNS work."""
    floor = os.path.join(ROOT, "benches", "floor")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=floor, check=True)
    return Server("floor", [os.path.join(floor, "target", "release", "floor"), f"127.0.0.1:{port}", "2"], port,
                  workdir)


def run_dnsperf(port, queries, seconds, extra=()):
    """dnsperf's report; `extra` are more of its options (-D sets DO)."""
    return subprocess.run(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries, "-l", str(seconds), "-T", "2", "-c", "16", "-q", "200",
         *extra],
        capture_output=True,
        text=True,
    ).stdout


def parse_dnsperf(out):
    """(qps, queries completed, % lost) of a dnsperf report."""
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
    lost = float(re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out).group(1))
    return qps, done, lost


def dnsperf(port, queries, seconds, extra=()):
    return parse_dnsperf(run_dnsperf(port, queries, seconds, extra))


def bench_qps(args, workdir, binary):
    zone = os.path.join(workdir, "bench10k.zone")
    queries = os.path.join(workdir, "bench10k.queries")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(args.names), ORIGIN, zone, queries], check=True)
    servers = {n: STARTERS[n](workdir, zone, free_port(), binary) for n in STARTERS}
    # The floor beside them: what the kernel and a batched UDP loop cost alone.
    servers["floor"] = start_floor(workdir, free_port())
    for s in servers.values():
        s.wait_ready()
    results = {n: [] for n in servers}
    try:
        for rnd in range(args.rounds):
            for n, s in servers.items():
                c0 = cpu_seconds(s.proc.pid)
                qps, done, lost = dnsperf(s.port, queries, args.seconds)
                cpu = cpu_seconds(s.proc.pid) - c0
                results[n].append((qps, cpu / max(done, 1) * 1e6, lost))
                print(f"  round {rnd + 1} {n:7} {qps:10.0f} qps  {cpu / max(done, 1) * 1e6:6.2f} us/query  lost {lost}%", flush=True)
    finally:
        for s in servers.values():
            s.stop()
    med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), max(r[2] for r in v)) for n, v in results.items()}
    base = med["nsd"]
    print(f"\nUDP queries, {args.names}-name zone, median of {args.rounds} rounds x {args.seconds}s (dnsperf -T 2 -c 16 -q 200)")
    floor = med["floor"]
    print("| server | qps | qps / NSD | server CPU per query | CPU / NSD | CPU / floor | lost |")
    print("|---|---|---|---|---|---|---|")
    for n, (qps, us, lost) in med.items():
        print(f"| {n} | {qps:,.0f} | {qps / base[0]:.2f} | {us:.2f} us | {us / base[1]:.2f} | {us / floor[1]:.2f} | {lost}% |")


def skip_name(b, i):
    while True:
        n = b[i]
        if n == 0:
            return i + 1
        if n >= 0xC0:
            return i + 2
        i += n + 1


def axfr(port):
    """Reads a whole AXFR from the socket (no dig: its parsing dominates).
    Returns (seconds, records, bytes)."""
    q = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in ORIGIN.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00\x00\xfc\x00\x01"
    start = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(len(q).to_bytes(2, "big") + q)
    f = s.makefile("rb", buffering=1 << 20)
    records = soas = total = 0
    while soas < 2:
        hdr = f.read(2)
        if len(hdr) < 2:
            raise SystemExit(f"AXFR from port {port} ended early after {records} records")
        msg = f.read(int.from_bytes(hdr, "big"))
        total += len(msg) + 2
        qd, an = int.from_bytes(msg[4:6], "big"), int.from_bytes(msg[6:8], "big")
        if msg[3] & 0xF:
            raise SystemExit(f"AXFR refused by port {port} (rcode {msg[3] & 0xF})")
        i = 12
        for _ in range(qd):
            i = skip_name(msg, i) + 4
        for _ in range(an):
            i = skip_name(msg, i)
            if int.from_bytes(msg[i:i + 2], "big") == 6:
                soas += 1
            i += 10 + int.from_bytes(msg[i + 8:i + 10], "big")
            records += 1
    s.close()
    return time.monotonic() - start, records, total


def status_kb(pid, field):
    """`field` (kB) of /proc/PID/status, 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(field + r":\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        return 0


class PeakRss:
    """Peak RSS of a process tree: each process's VmHWM, sampled while the
    tree lives so that forks (NSD's) that come and go are counted, summed."""

    def __init__(self, pid):
        self.pid, self.hwm = pid, {}

    def sample(self):
        for p in tree(self.pid):
            self.hwm[p] = max(self.hwm.get(p, 0), status_kb(p, "VmHWM"))

    def mb(self):
        return sum(self.hwm.values()) / 1024


def load_once(start, name=ORIGIN):
    """Starts a server, waits for `name` SOA to be answered while sampling
    its peak RSS; returns (server, seconds to first answer, peak sampler)."""
    s = start()
    peak = PeakRss(s.proc.pid)
    deadline = time.monotonic() + 300
    while True:
        peak.sample()
        if s.proc.poll() is not None:
            raise SystemExit(f"{s.name} exited; see its log")
        if answers(s.port, name):
            t = time.monotonic() - s.started
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{s.name} did not answer within 300s")
        time.sleep(0.02)
    # Post-load work (freeing, trimming, a server's forks) settles here;
    # the peak is still sampled.
    for _ in range(10):
        peak.sample()
        time.sleep(0.1)
    return s, t, peak


def start_tandem_secondary(workdir, port, primary_port, binary, tag):
    d = os.path.join(workdir, f"secondary-{tag}")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "tandem.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{d}/var"\nudp_workers = 2\n'
                f'log_level = "warn"\n[[zone]]\nname = "{ORIGIN}"\nrole = "secondary"\n'
                f'primaries = ["127.0.0.1:{primary_port}"]\n')
    return Server("tandem-secondary", [binary, "serve", "--config", cfg], port, d)


def bench_load(args, workdir, binary):
    zone = os.path.join(workdir, "bench1m.zone")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(args.big), ORIGIN, zone], check=True)
    records = sum(1 for line in open(zone) if not line.startswith("$")) - 0
    names = list(STARTERS)
    runs = {n: [] for n in names}
    axfrs = {}
    for rnd in range(args.load_rounds):
        # The order rotates, so no server always follows the same one.
        for n in names[rnd % len(names):] + names[:rnd % len(names)]:
            s, t, peak = load_once(lambda: STARTERS[n](workdir, zone, free_port(), binary))
            try:
                rss, pss = memory_mb(s.proc.pid)
                ok = answers(s.port, f"h{args.big - 1}.{ORIGIN}", "A")
                if n not in axfrs:
                    axfrs[n] = axfr(s.port)
            finally:
                s.stop()
            runs[n].append((t, peak.mb(), rss, pss, ok))
            print(f"  round {rnd + 1} {n:7} loaded in {t:.2f}s  peak RSS {peak.mb():.0f} MB  RSS {rss:.0f} MB  "
                  f"PSS {pss:.0f} MB  last name answers: {ok}", flush=True)
    med = {n: tuple(statistics.median(r[i] for r in v) for i in range(4)) + (all(r[4] for r in v),)
           for n, v in runs.items()}
    k = med["knot"]
    print(f"\nZone load, {args.big} names ({records} records), start to first answer; "
          f"median of {args.load_rounds} rounds, servers interleaved")
    print("| server | load time | time / Knot | peak RSS | peak / Knot | steady RSS | steady / Knot | peak / steady | PSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, (t, peak, rss, pss, ok) in med.items():
        print(f"| {n} | {t:.2f} s | {t / k[0]:.2f} | {peak:.0f} MB | {peak / k[1]:.2f} | {rss:.0f} MB | "
              f"{rss / k[2]:.2f} | {peak / rss:.2f} | {pss:.0f} MB |")
    print("(peak: VmHWM of each process of the server's tree, sampled during and 1 s after the load, summed;"
          " steady: RSS summed over the tree 1 s after the first answer)")
    rows = {n: (med[n][0], med[n][2], med[n][3], med[n][4], axfrs[n]) for n in names}
    print(f"\nAXFR out of the same zone, read and counted by the benchmark itself")
    print("| server | records | time | time / NSD | MB on the wire |")
    print("|---|---|---|---|---|")
    for n, (t, rss, pss, ok, xfr) in rows.items():
        print(f"| {n} | {xfr[1]:,} | {xfr[0]:.2f} s | {xfr[0] / rows['nsd'][4][0]:.2f} | {xfr[2] / 1e6:.1f} |")
    if not args.skip_secondary:
        bench_secondary(args, workdir, zone, binary, records)


def bench_secondary(args, workdir, zone, binary, records):
    """A tandem secondary of a tandem primary: from its start (no saved
    copy) to answering from the transferred zone."""
    primary, _, _ = load_once(lambda: start_tandem(workdir, zone, free_port(), binary))
    results = []
    try:
        for rnd in range(args.load_rounds):
            s, t, peak = load_once(lambda: start_tandem_secondary(workdir, free_port(), primary.port, binary, rnd))
            try:
                rss, _ = memory_mb(s.proc.pid)
                ok = answers(s.port, f"h{args.big - 1}.{ORIGIN}", "A")
            finally:
                s.stop()
            results.append((t, peak.mb(), rss, ok))
            print(f"  round {rnd + 1} secondary serving after {t:.2f}s  peak RSS {peak.mb():.0f} MB  RSS {rss:.0f} MB  "
                  f"last name answers: {ok}", flush=True)
    finally:
        primary.stop()
    t, peak, rss = (statistics.median(r[i] for r in results) for i in range(3))
    print(f"\ntandem secondary of a tandem primary, {records} records by AXFR: start (no saved copy) to first answer,"
          f" median of {args.load_rounds}")
    print("| transfer + build + save | peak RSS | steady RSS | peak / steady |")
    print("|---|---|---|---|")
    print(f"| {t:.2f} s | {peak:.0f} MB | {rss:.0f} MB | {peak / rss:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--skip-qps", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--load-rounds", type=int, default=3)
    ap.add_argument("--skip-secondary", action="store_true")
    args = ap.parse_args()
    for tool in ["nsd", "knotd", "dnsperf", "dig"]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install nsd knot dnsperf bind9-dnsutils")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "tandem")
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as workdir:
        if not args.skip_qps:
            bench_qps(args, workdir, binary)
        if not args.skip_load:
            bench_load(args, workdir, binary)


if __name__ == "__main__":
    main()
