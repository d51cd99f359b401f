#!/usr/bin/env python3
"""What TLS costs tandem, measured against plain TCP in the same run.

1. AXFR of a large zone (default 1M names, 1.79M records) over TLS (XoT)
   and over TCP, read by a raw client that only sums ANCOUNT per message
   (a reader faster than the server; dig/kdig would measure themselves).
2. Query throughput over DoT and over TCP: dnsperf -m dot / -m tcp, the same
   query mix, and tandem's own CPU time per answered query.
3. The cost of a new connection: N sequential connections, each doing one
   query, over TLS (full TLS 1.3 handshake, ECDSA P-256) and over TCP:
   wall time per connection and tandem's CPU time per connection.

usage: benches/tls.py [--big 1000000] [--names 10000] [--seconds 8]
                      [--rounds 3] [--connections 500]
Needs: dnsperf, dig, openssl (Debian packages); builds tandem --release.
"""
import argparse
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import axfr  # noqa: E402  (transfer_query, connect, read_exact, raw_transfer)
import bench  # noqa: E402  (free_port, cpu_seconds, Server, axfr)

ROOT = bench.ROOT
ORIGIN = bench.ORIGIN
NAME = "primary.test"


def make_certs(d):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={NAME}")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{NAME},IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext")


def start(workdir, zonefile, port, tls_port, binary):
    cfg = os.path.join(workdir, "tandem.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\ndata_dir = "{workdir}/var"\nudp_workers = 2\n'
                f'log_level = "warn"\ntcp_max_connections = 1024\n'
                f'tls_listen = ["127.0.0.1:{tls_port}"]\ntls_certificate = "{workdir}/server.pem"\n'
                f'tls_key = "{workdir}/server.key"\n'
                f'[[zone]]\nname = "{ORIGIN}"\nrole = "primary"\nfile = "{zonefile}"\n'
                f'allow_transfer = ["127.0.0.1"]\n')
    s = bench.Server("tandem", [binary, "serve", "--config", cfg], port, workdir)
    s.wait_ready()
    return s


def tls_context(workdir):
    ctx = ssl.create_default_context(cafile=os.path.join(workdir, "ca.pem"))
    ctx.set_alpn_protocols(["dot"])
    return ctx


def bench_axfr(args, workdir, binary):
    zone = os.path.join(workdir, "big.zone")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(args.big), ORIGIN, zone],
                   check=True)
    port, tls_port = bench.free_port(), bench.free_port()
    s = start(workdir, zone, port, tls_port, binary)
    try:
        _, expected, _ = bench.axfr(port)  # walks every record once: the count
        ctx = tls_context(workdir)
        tcp, tls, tcp_cpu, tls_cpu = [], [], [], []
        for _ in range(args.rounds):
            for kind, out, cpu, c in (("tcp", tcp, tcp_cpu, None), ("tls", tls, tls_cpu, ctx)):
                before = bench.cpu_seconds(s.proc.pid)
                q = axfr.transfer_query(axfr.AXFR)
                secs, size = axfr.raw_transfer(port if c is None else tls_port, q, expected, c and (c, NAME))
                cpu.append(bench.cpu_seconds(s.proc.pid) - before)
                out.append(secs)
        t, l = statistics.median(tcp), statistics.median(tls)
        print(f"\nAXFR out, {args.big:,} names ({expected:,} records, {size / 1e6:.0f} MB), "
              f"raw reader, median of {args.rounds}")
        print("| transport | seconds | tandem CPU s | ratio to TCP |")
        print("|---|---|---|---|")
        print(f"| TCP | {t:.3f} | {statistics.median(tcp_cpu):.2f} | 1.00 |")
        print(f"| TLS (XoT) | {l:.3f} | {statistics.median(tls_cpu):.2f} | {l / t:.2f} |")
    finally:
        s.stop()


def dnsperf(mode, port, queries, seconds):
    r = subprocess.run(["dnsperf", "-m", mode, "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                        "-l", str(seconds), "-T", "2", "-c", "16", "-q", "200"],
                       capture_output=True, text=True)
    qps = float(r.stdout.split("Queries per second:")[1].split()[0])
    done = int(r.stdout.split("Queries completed:")[1].split()[0])
    return qps, done


def bench_queries(args, workdir, binary):
    zone = os.path.join(workdir, "q.zone")
    queries = os.path.join(workdir, "q.queries")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(args.names), ORIGIN, zone,
                    queries], check=True)
    port, tls_port = bench.free_port(), bench.free_port()
    s = start(workdir, zone, port, tls_port, binary)
    try:
        res = {"tcp": [], "dot": []}
        for _ in range(args.rounds):
            for mode, p in (("tcp", port), ("dot", tls_port)):
                before = bench.cpu_seconds(s.proc.pid)
                qps, done = dnsperf(mode, p, queries, args.seconds)
                us = (bench.cpu_seconds(s.proc.pid) - before) / max(done, 1) * 1e6
                res[mode].append((qps, us))
        med = {m: (statistics.median(q for q, _ in v), statistics.median(u for _, u in v)) for m, v in res.items()}
        print(f"\nQueries over TCP and DoT, {args.names}-name zone, median of {args.rounds} x {args.seconds}s "
              f"(dnsperf -m tcp|dot -T 2 -c 16 -q 200)")
        print("| transport | qps | ratio | tandem CPU/query | ratio |")
        print("|---|---|---|---|---|")
        for m in ("tcp", "dot"):
            q, u = med[m]
            print(f"| {m.upper()} | {q:,.0f} | {q / med['tcp'][0]:.2f} | {u:.2f} us | {u / med['tcp'][1]:.2f} |")
    finally:
        s.stop()


def one_query(port, ctx):
    s = axfr.connect(port, axfr.transfer_query(axfr.SOA), ctx and (ctx, NAME))
    buf = bytearray(4096)
    n = int.from_bytes(axfr.read_exact(s, 2, buf), "big")
    axfr.read_exact(s, n, buf)
    s.close()


def bench_connections(args, workdir, binary):
    zone = os.path.join(workdir, "c.zone")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), "100", ORIGIN, zone], check=True)
    port, tls_port = bench.free_port(), bench.free_port()
    s = start(workdir, zone, port, tls_port, binary)
    try:
        ctx = tls_context(workdir)
        out = {}
        for kind, p, c in (("TCP", port, None), ("TLS", tls_port, ctx)):
            before, t0 = bench.cpu_seconds(s.proc.pid), time.monotonic()
            for _ in range(args.connections):
                one_query(p, c)
            wall = (time.monotonic() - t0) / args.connections
            cpu = (bench.cpu_seconds(s.proc.pid) - before) / args.connections
            out[kind] = (wall, cpu)
        print(f"\nNew connection + one SOA query, {args.connections} in a row")
        print("| transport | wall per connection | tandem CPU per connection |")
        print("|---|---|---|")
        for k, (w, c) in out.items():
            print(f"| {k} | {w * 1e3:.2f} ms | {c * 1e6:.0f} us |")
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--names", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--skip-axfr", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "tandem")
    with tempfile.TemporaryDirectory() as workdir:
        make_certs(workdir)
        bench_connections(args, workdir, binary)
        bench_queries(args, workdir, binary)
        if not args.skip_axfr:
            bench_axfr(args, workdir, binary)


if __name__ == "__main__":
    main()
