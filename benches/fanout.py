#!/usr/bin/env python3
"""Fan-out: one tandem primary and N tandem secondaries as separate
processes, each secondary on its own loopback address (127.0.1.1 ... same
port), one edit per second. For each edit: the time from the save until
the last secondary serves the new serial (UDP SOA polls), and the
primary's own convergence time (it asks its followers itself). Reports
p50/p95/max, failed transfers (primary's and secondaries' counters), the
primary's CPU per follower per change and its memory per follower.

usage: benches/fanout.py [--followers 50] [--seconds 60] [--names 10000]
Needs: dig (bind9-dnsutils); builds tandem --release.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import propagation  # noqa: E402

ORIGIN = bench.ORIGIN


def metrics(ctl):
    with urllib.request.urlopen(f"http://{ctl}/metrics", timeout=5) as r:
        return r.read().decode()


def counter(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def status(ctl):
    with urllib.request.urlopen(f"http://{ctl}/status", timeout=5) as r:
        return json.loads(r.read())["zones"][0]


def wait_all(addrs, serial, timeout=60):
    """Seconds until every (ip, port) answers `serial`; asks every 5 ms (50
    servers polled every 0.3 ms would load the machine under test)."""
    return propagation.wait_all(addrs, serial, timeout, poll=0.005)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--followers", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--names", type=int, default=10_000)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=bench.ROOT, check=True)
    binary = os.path.join(bench.ROOT, "target", "release", "tandem")
    with tempfile.TemporaryDirectory() as w:
        gen = os.path.join(w, "gen.zone")
        subprocess.run([sys.executable, os.path.join(bench.ROOT, "benches", "zonegen.py"), str(args.names), ORIGIN,
                        gen], check=True)
        body = "@ NS ns1\n" + "".join(l for l in open(gen) if not l.startswith(("$", "@ SOA")))
        zone = os.path.join(w, "zone")
        with open(zone, "w") as f:
            f.write(propagation.zone_text(body, 1, 0))
        port, pport, ctl = bench.free_port(), bench.free_port(), f"127.0.0.1:{bench.free_port()}"
        addrs = [(f"127.0.1.{i + 1}", port) for i in range(args.followers)]
        notify = ", ".join(f'"{ip}:{p}"' for ip, p in addrs)
        with open(os.path.join(w, "p.toml"), "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{pport}"]\ncontrol = "{ctl}"\ndata_dir = "{w}/p"\n'
                    f'log_level = "warn"\n'
                    f'[[zone]]\nname = "{ORIGIN}"\nrole = "primary"\nfile = "{zone}"\nserial_policy = "keep"\n'
                    f'notify = [{notify}]\nallow_transfer = ["127.0.0.0/8"]\nfollower_check_interval = 10\n')
        procs = []
        plog = open(os.path.join(w, "p.log"), "w")
        primary = subprocess.Popen([binary, "serve", "--config", "p.toml"], cwd=w, stdout=plog, stderr=subprocess.STDOUT)
        procs.append(primary)
        try:
            wait_all([("127.0.0.1", pport)], 1)
            rss_alone = bench.memory_mb(primary.pid)[0]
            sctl = []
            for i, (ip, p) in enumerate(addrs):
                d = os.path.join(w, f"s{i}")
                os.makedirs(d)
                c = f"127.0.1.{i + 1}:{bench.free_port()}"
                sctl.append(c)
                with open(os.path.join(d, "t.toml"), "w") as f:
                    f.write(f'[server]\nlisten = ["{ip}:{p}"]\ncontrol = "{c}"\ndata_dir = "{d}/var"\n'
                            f'udp_workers = 1\nlog_level = "warn"\n[[zone]]\nname = "{ORIGIN}"\n'
                            f'role = "secondary"\nprimaries = ["127.0.0.1:{pport}"]\n')
                log = open(os.path.join(d, "log"), "w")
                procs.append(subprocess.Popen([binary, "serve", "--config", "t.toml"], cwd=d, stdout=log,
                                              stderr=subprocess.STDOUT))
            wait_all(addrs, 1, timeout=120)
            time.sleep(1)
            rss_with = bench.memory_mb(primary.pid)[0]
            before = metrics(ctl)
            cpu0 = bench.cpu_seconds(primary.pid)
            times, conv = [], []
            for e in range(1, args.seconds + 1):
                started = time.monotonic()
                t0 = propagation.save(zone, propagation.zone_text(body, 1 + e, e))
                wait_all(addrs, 1 + e)
                times.append(time.monotonic() - t0)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
                st = status(ctl)
                if st.get("converged_serial") == 1 + e and st.get("convergence_ms") is not None:
                    conv.append(st["convergence_ms"])
            cpu = bench.cpu_seconds(primary.pid) - cpu0
            after = metrics(ctl)
            failed_out = (counter(after, "tandem_transfers_out_total", result="failed")
                          - counter(before, "tandem_transfers_out_total", result="failed"))
            failed_in = 0.0
            for c in sctl:
                failed_in += counter(metrics(c), "tandem_transfers_in_total", result="failed")
            st = status(ctl)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        v = sorted(times)
        p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
        states = {}
        for f in st["followers"]:
            states[f.get("state")] = states.get(f.get("state"), 0) + 1
        print(f"\nFan-out: 1 primary, {args.followers} secondaries (127.0.1.x), {args.names:,}-name zone, "
              f"{args.seconds} edits one per second")
        print("| measure | value |")
        print("|---|---|")
        print(f"| save -> all {args.followers} serving, p50 / p95 / max | {statistics.median(v) * 1e3:.0f} ms / "
              f"{p95 * 1e3:.0f} ms / {v[-1] * 1e3:.0f} ms |")
        if conv:
            c = sorted(conv)
            print(f"| primary's own convergence_ms, p50 / max ({len(c)} versions) | {statistics.median(c):.0f} ms / "
                  f"{c[-1]:.0f} ms |")
        print(f"| failed transfers (out at the primary / in at the secondaries) | {failed_out:.0f} / {failed_in:.0f} |")
        print(f"| primary CPU per follower per change | {cpu / (args.followers * args.seconds) * 1e6:.0f} us |")
        print(f"| primary RSS alone / with {args.followers} followers | {rss_alone:.1f} MB / {rss_with:.1f} MB "
              f"({(rss_with - rss_alone) / args.followers * 1024:.0f} KB per follower) |")
        print(f"| followers by state at the end | {states} |")


if __name__ == "__main__":
    main()
