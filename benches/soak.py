#!/usr/bin/env python3
"""Soak: dnsperf at full rate against a tandem primary and a tandem secondary
for 10 minutes while the primary's zone file is edited every second.

Reports qps and timeouts per server, whether every edit reached the
secondary, RSS growth from minute 2 to the end, and log lines at WARN or
ERROR other than expected ones.

usage: benches/soak.py [--seconds 600] [--names 10000]
Needs dnsperf and dig (Debian packages); builds tandem --release.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, answers, free_port  # noqa: E402

ORIGIN = "soak.test."


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return 0.0


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
    with open(os.path.join(work, "p.toml"), "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{pport}"]\ndata_dir = "{work}/p"\nudp_workers = 1\n[[zone]]\nname = "{ORIGIN}"\n'
                f'role = "primary"\nfile = "{zone}"\nnotify = ["127.0.0.1:{sport}"]\n')
    with open(os.path.join(work, "s.toml"), "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{sport}"]\ndata_dir = "{work}/s"\nudp_workers = 1\n[[zone]]\nname = "{ORIGIN}"\n'
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

    def editor():
        # One record appended per second, in place (the cheapest edit, so the
        # editor keeps its pace while dnsperf and the servers use every core).
        n = 0
        next_at = time.time()
        while not stop.is_set():
            n += 1
            with open(zone, "a") as f:
                f.write(f"edit{n} A 192.0.2.{n % 250 + 1}\n")
            edits.append(n)
            next_at += 1.0
            stop.wait(max(0.0, next_at - time.time()))

    rss = {n: [] for n in procs}

    def sampler():
        start = time.time()
        while not stop.is_set():
            for n, p in procs.items():
                rss[n].append((time.time() - start, rss_mb(p.pid)))
            stop.wait(10)

    threads = [threading.Thread(target=editor), threading.Thread(target=sampler)]
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
    final = serial(pport)
    missing = [n for n in edits if not answers(sport, f"edit{n}.{ORIGIN}", "A")]
    final_secondary = serial(sport)
    for p in procs.values():
        p.terminate()
        p.wait()
    expected = re.compile(r"NOTIFY not answered|refresh failed")
    print(f"\nSoak: {args.seconds} s of dnsperf on each server, the zone edited every second ({len(edits)} edits)")
    print("| server | qps | timeouts | RSS at 2 min | RSS at end | growth | unexpected WARN/ERROR lines |")
    print("|---|---|---|---|---|---|---|")
    for n in procs:
        qps = float(re.search(r"Queries per second:\s+([\d.]+)", outs[n]).group(1))
        sent = int(re.search(r"Queries sent:\s+(\d+)", outs[n]).group(1))
        lost = int(re.search(r"Queries lost:\s+(\d+)", outs[n]).group(1))
        samples = rss[n]
        at2 = next((v for t, v in samples if t >= min(120, args.seconds / 5)), samples[0][1])
        end = samples[-1][1]
        with open(os.path.join(work, f"{n}.log")) as f:
            bad = [l for l in f if (" WARN " in l or " ERROR " in l) and not expected.search(l)]
        print(f"| {n} | {qps:,.0f} | {lost}/{sent} ({100 * lost / max(sent, 1):.3f} %) | {at2:.1f} MB | {end:.1f} MB | "
              f"{100 * (end - at2) / max(at2, 1):+.1f} % | {len(bad)} |")
        for l in bad[:5]:
            print("   ", l.strip())
    print(f"edits that did not reach the secondary: {len(missing)} of {len(edits)}; final serial primary {final}, secondary {final_secondary}")
    print(f"work directory (logs): {work}")


if __name__ == "__main__":
    main()
