#!/usr/bin/env python3
"""Soak: dnsperf at full rate against a tandem primary and a tandem secondary
for 10 minutes while the primary's zone file is edited every second.

Reports qps and timeouts per server, whether every edit reached the
secondary, RSS growth from minute 2 to the last minute, and log lines at
WARN or ERROR other than expected ones. RSS is sampled every second; a
minute's figure is the median of its samples, because a sample taken while
a new version is being built (old and new both alive) says nothing about
growth. The peak is reported as well.

usage: benches/soak.py [--seconds 600] [--names 10000]
Needs dnsperf and dig (Debian packages); builds tandem --release.
"""
import argparse
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.request
from statistics import median
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, answers, free_port  # noqa: E402

ORIGIN = "soak.test."


def rss_mb(pid, field="VmRSS"):
    """Resident memory in MB: VmRSS (all), or RssAnon (heap, stacks: what
    the process allocated; RssFile is the binary's pages as they are
    first used)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(field + r":\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return 0.0


def has_a(port, name):
    """One A query over UDP: True if answered NOERROR with data."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(q, ("127.0.0.1", port))
        try:
            while True:
                r = s.recv(4096)
                if len(r) >= 12 and struct.unpack(">H", r[:2])[0] == qid:
                    flags, _, an = struct.unpack(">HHH", r[2:8])
                    return flags & 0xF == 0 and an > 0
        except OSError:
            return False


def minute_medians(samples, seconds):
    """Median of minute 2 and of the last minute of (time, value) samples."""
    minute = min(60, seconds / 10)
    at2 = median([v for t, v in samples if minute <= t < 2 * minute] or [samples[0][1]])
    end = median([v for t, v in samples if t >= samples[-1][0] - minute])
    return at2, end


def heap_mb(port):
    """tandem_heap_bytes from /metrics: (in use, held free) in MB."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return (0.0, 0.0)
    kinds = dict(re.findall(r'tandem_heap_bytes\{kind="(\w+)"\} (\d+)', text))
    return (int(kinds.get("in_use", 0)) / 2**20, int(kinds.get("free", 0)) / 2**20)


def serial(port):
    r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(port), "@127.0.0.1", ORIGIN, "SOA"],
                       capture_output=True, text=True)
    parts = r.stdout.split()
    return int(parts[2]) if len(parts) >= 3 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--names", type=int, default=10000)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "tandem")
    work = tempfile.mkdtemp(prefix="tandem-soak-")
    zone = os.path.join(work, "soak.zone")
    queries = os.path.join(work, "soak.queries")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(args.names), ORIGIN, zone, queries], check=True)
    with open(zone) as f:
        base = f.read()
    pport, sport = free_port(), free_port()
    ctl = {"primary": free_port(), "secondary": free_port()}
    with open(os.path.join(work, "p.toml"), "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{pport}"]\ncontrol = "127.0.0.1:{ctl["primary"]}"\ndata_dir = "{work}/p"\nudp_workers = 1\n[[zone]]\nname = "{ORIGIN}"\n'
                f'role = "primary"\nfile = "{zone}"\nnotify = ["127.0.0.1:{sport}"]\n')
    with open(os.path.join(work, "s.toml"), "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{sport}"]\ncontrol = "127.0.0.1:{ctl["secondary"]}"\ndata_dir = "{work}/s"\nudp_workers = 1\n[[zone]]\nname = "{ORIGIN}"\n'
                f'role = "secondary"\nprimaries = ["127.0.0.1:{pport}"]\n')
    logs = {n: open(os.path.join(work, f"{n}.log"), "w") for n in ("primary", "secondary")}
    env = dict(os.environ, **({"MALLOC_ARENA_MAX": os.environ["SOAK_ARENAS"]} if "SOAK_ARENAS" in os.environ else {}))
    procs = {"primary": subprocess.Popen([binary, "serve", "--config", os.path.join(work, "p.toml")], stderr=logs["primary"], env=env)}
    deadline = time.time() + 30
    while time.time() < deadline and not answers(pport, ORIGIN):
        time.sleep(0.1)
    procs["secondary"] = subprocess.Popen([binary, "serve", "--config", os.path.join(work, "s.toml")], stderr=logs["secondary"], env=env)
    ports = {"primary": pport, "secondary": sport}
    deadline = time.time() + 30
    while time.time() < deadline and not (answers(pport, ORIGIN) and answers(sport, ORIGIN)):
        time.sleep(0.1)

    stop = threading.Event()
    edits = []
    edit_times = []

    def editor():
        # One record appended per second, in place (the cheapest edit, so the
        # editor keeps its pace while dnsperf and the servers use every core).
        n = 0
        next_at = time.time()
        while not stop.is_set():
            n += 1
            with open(zone, "a") as f:
                f.write(f"edit{n} A 192.0.2.{n % 250 + 1}\n")
            edit_times.append(time.time())
            edits.append(n)
            next_at += 1.0
            stop.wait(max(0.0, next_at - time.time()))

    rss = {n: [] for n in procs}
    delays = []

    def prober():
        # Edit-to-secondary propagation: the newest edit's name is polled on
        # the secondary until it answers, then the newest edit after it, and
        # so on.
        last = 0
        while not stop.is_set():
            if not edits or edits[-1] == last:
                stop.wait(0.05)
                continue
            n, written = edits[-1], edit_times[-1]
            last = n
            while not stop.is_set() and not has_a(sport, f"edit{n}.{ORIGIN}"):
                stop.wait(0.02)
            if not stop.is_set():
                delays.append(time.time() - written)

    heap = {n: [] for n in procs}
    anon = {n: [] for n in procs}

    def sampler():
        start = time.time()
        i = 0
        while not stop.is_set():
            for n, p in procs.items():
                rss[n].append((time.time() - start, rss_mb(p.pid)))
                anon[n].append((time.time() - start, rss_mb(p.pid, "RssAnon")))
                if i % 10 == 0:
                    heap[n].append((time.time() - start, heap_mb(ctl[n])))
            i += 1
            stop.wait(1)

    threads = [threading.Thread(target=f) for f in (editor, sampler, prober)]
    for t in threads:
        t.start()
    perf = {
        n: subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(ports[n]), "-d", queries, "-l", str(args.seconds),
                             "-c", "8", "-q", "100", "-t", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for n in procs
    }
    outs = {n: p.communicate()[0] for n, p in perf.items()}
    stop.set()
    for t in threads:
        t.join()
    deadline = time.time() + 60
    while time.time() < deadline and (serial(sport) != serial(pport) or serial(sport) is None):
        time.sleep(0.5)
    missing = [n for n in edits if not answers(sport, f"edit{n}.{ORIGIN}", "A")]
    final, final_secondary = serial(pport), serial(sport)
    for p in procs.values():
        p.terminate()
        p.wait()
    expected = re.compile(r"NOTIFY not answered|refresh failed")
    print(f"\nSoak: {args.seconds} s of dnsperf on each server, the zone edited every second ({len(edits)} edits)")
    print("| server | qps | timeouts | RSS minute 2 | RSS last minute | growth | peak | unexpected WARN/ERROR lines |")
    print("|---|---|---|---|---|---|---|---|")
    for n in procs:
        qps = float(re.search(r"Queries per second:\s+([\d.]+)", outs[n]).group(1))
        sent = int(re.search(r"Queries sent:\s+(\d+)", outs[n]).group(1))
        lost = int(re.search(r"Queries lost:\s+(\d+)", outs[n]).group(1))
        samples = rss[n]
        at2, end = minute_medians(samples, args.seconds)
        peak = max(v for _, v in samples)
        with open(os.path.join(work, f"{n}.log")) as f:
            bad = [l for l in f if (" WARN " in l or " ERROR " in l) and not expected.search(l)]
        print(f"| {n} | {qps:,.0f} | {lost}/{sent} ({100 * lost / max(sent, 1):.3f} %) | {at2:.1f} MB | {end:.1f} MB | "
              f"{100 * (end - at2) / max(at2, 1):+.1f} % | {peak:.1f} MB | {len(bad)} |")
        for l in bad[:5]:
            print("   ", l.strip())
        with open(os.path.join(work, f"{n}.rss.csv"), "w") as f:
            f.write("seconds,rss_mb,anon_mb\n" + "".join(f"{t:.0f},{v:.2f},{a:.2f}\n" for (t, v), (_, a) in zip(samples, anon[n])))
        with open(os.path.join(work, f"{n}.heap.csv"), "w") as f:
            f.write("seconds,in_use_mb,free_mb\n" + "".join(f"{t:.0f},{u:.2f},{fr:.2f}\n" for t, (u, fr) in heap[n]))
    print("anonymous RSS (RssAnon: heap, stacks, buffers; excludes the binary's pages), same windows:")
    for n in procs:
        a2, a10 = minute_medians(anon[n], args.seconds)
        print(f"  {n}: {a2:.2f} MB -> {a10:.2f} MB ({100 * (a10 - a2) / max(a2, 0.01):+.1f} %)")
    print("heap (malloc's view, MB in use / held free) at minute 2 and at the end:")
    for n in procs:
        h = heap[n]
        at2 = next((v for t, v in h if t >= min(120, args.seconds / 5)), h[0][1])
        print(f"  {n}: {at2[0]:.2f} / {at2[1]:.2f} -> {h[-1][1][0]:.2f} / {h[-1][1][1]:.2f}")
    if delays:
        d = sorted(delays)
        print(f"edit to secondary ({len(d)} edits probed): median {1000 * median(d):.0f} ms, "
              f"p90 {1000 * d[int(len(d) * 0.9)]:.0f} ms, max {1000 * d[-1]:.0f} ms")
    print(f"edits that did not reach the secondary: {len(missing)} of {len(edits)}; final serial primary {final}, secondary {final_secondary}")
    print(f"work directory (logs): {work}")


if __name__ == "__main__":
    main()
