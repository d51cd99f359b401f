#!/usr/bin/env python3
"""tandem against NSD (and Knot) on a signed (NSEC3) zone, in one run.

1. Signs the benches/zonegen.py zone once (dnssec-signzone, ECDSAP256SHA256
   KSK + ZSK, NSEC3 without salt, 0 extra iterations, no opt-out) and keeps
   the signed file in a cache directory keyed by the parameters: signing
   1M names takes minutes.
2. Checks that the servers prove a few NXDOMAINs with the same NSEC3 owners
   (so that they do the same work).
3. Interleaved rounds per server: load time (start to first answer) and
   steady RSS (process tree, 1 s after the first answer), then dnsperf -D
   (DO=1) on a mix of positive and NXDOMAIN queries, and on NXDOMAIN alone;
   qps and server CPU per answered query, ratios to NSD. NSD runs with
   minimal-responses (see STARTERS), so that all answer with the same records.

usage: benches/signed.py [--names 1000000] [--rounds 3] [--seconds 10]
                         [--servers tandem,nsd,knot] [--sign-only]
                         [--cache DIR (/var/tmp/tandem-signed-cache)]
Needs: nsd, knot, dnsperf, dig, dnssec-keygen, dnssec-signzone.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the starters, dnsperf runner and /proc helpers)

ROOT = bench.ROOT
ORIGIN = bench.ORIGIN
ALGORITHM = "ECDSAP256SHA256"


def cache_key(names):
    """The signing parameters and the generator's text: a new generator makes
    a new zone."""
    with open(os.path.join(ROOT, "benches", "zonegen.py"), "rb") as f:
        gen = hashlib.sha256(f.read()).hexdigest()[:12]
    return f"{names}-{ALGORITHM}-nsec3-nosalt-i0-noout-{gen}"


def signed_zone(names, cache):
    """Path of the signed zone for `names`, signing it if the cache lacks it."""
    d = os.path.join(cache, cache_key(names))
    signed = os.path.join(d, "zone.signed")
    if os.path.exists(signed):
        return signed
    os.makedirs(d, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sign-", dir=d)
    unsigned = os.path.join(work, "zone")
    subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(names), ORIGIN, unsigned],
                   check=True)
    for extra in (["-f", "KSK"], []):
        subprocess.run(["dnssec-keygen", "-q", "-K", work, "-a", ALGORITHM] + extra + [ORIGIN],
                       check=True, capture_output=True)
    with open(unsigned, "a") as f:
        for key in sorted(os.listdir(work)):
            if key.endswith(".key"):
                f.write(f"$INCLUDE {os.path.join(work, key)}\n")
    t = time.monotonic()
    print(f"signing {names} names (dnssec-signzone -3 - -H 0 -n 2) ...", flush=True)
    subprocess.run(["dnssec-signzone", "-q", "-P", "-n", "2", "-3", "-", "-H", "0", "-S", "-K", work, "-d", work, "-o", ORIGIN,
                    "-f", os.path.join(work, "zone.signed"), unsigned], check=True)
    print(f"signed in {time.monotonic() - t:.0f} s", flush=True)
    os.rename(os.path.join(work, "zone.signed"), signed)
    shutil.rmtree(work)
    return signed


def record_count(zone):
    """Records in dnssec-signzone's output (a record starts at an owner in
    column 0 or at a TTL after blanks), counted once and kept beside it."""
    cached = zone + ".records"
    if not os.path.exists(cached):
        n = sum(1 for line in open(zone) if line[:1] not in (";", "\t", " ", "\n") or re.match(r"\s+\d+\s+[A-Z]", line))
        with open(cached, "w") as f:
            f.write(str(n))
    with open(cached) as f:
        return int(f.read())


def query_files(names, workdir):
    """Two dnsperf query files: half positive (A, AAAA), half NXDOMAIN; and
    NXDOMAIN alone. NXDOMAIN names come in two shapes: nxN (closest encloser
    the apex) and x.hN (closest encloser hN: three distinct NSEC3 records)."""
    rnd = random.Random(1)

    def nx():
        i = rnd.randrange(names)
        return f"nx{i}.{ORIGIN} A" if rnd.random() < 0.5 else f"x.h{i}.{ORIGIN} A"

    def positive():
        i = rnd.randrange(names)
        return f"h{i}.{ORIGIN} A" if rnd.random() < 0.7 else f"h{i - i % 2}.{ORIGIN} AAAA"

    files = {}
    for kind, pick in (("mix", lambda: positive() if rnd.random() < 0.5 else nx()), ("nxdomain", nx)):
        files[kind] = os.path.join(workdir, f"{kind}.queries")
        with open(files[kind], "w") as f:
            for _ in range(100_000):
                f.write(pick() + "\n")
    return files


def dig_proof(port, qname):
    """(rcode, sorted NSEC3 owners in AUTHORITY, truncated?, answer has RRSIG)."""
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), qname, "A", "+dnssec", "+norec", "+bufsize=1232",
                          "+time=2", "+tries=1", "+noignore"], capture_output=True, text=True).stdout
    rcode = re.search(r"status: (\w+)", out).group(1)
    flags = re.search(r"flags: ([\w ]+);", out).group(1).split()
    owners, section, rrsig = [], None, False
    for line in out.splitlines():
        m = re.match(r";; (\w+) SECTION:", line)
        if m:
            section = m.group(1)
            continue
        f = line.split()
        if len(f) > 4 and not line.startswith(";"):
            if section == "AUTHORITY" and f[3] == "NSEC3":
                owners.append(f[0].lower())
            if section == "ANSWER" and f[3] == "RRSIG":
                rrsig = True
    return rcode, sorted(owners), "tc" in flags, rrsig


def check_same_proofs(servers, names):
    """Every server's NSEC3 owners for a few NXDOMAINs equal NSD's."""
    qnames = [f"nx{i}.{ORIGIN}" for i in (7, 4242, names - 3)] + \
             [f"x.h{i}.{ORIGIN}" for i in (1, 31337 % names, names - 1)] + [f"h{names // 2}.{ORIGIN}"]
    for q in qnames:
        ref = dig_proof(servers["nsd"].port, q)
        for n, s in servers.items():
            got = dig_proof(s.port, q)
            if got != ref:
                raise SystemExit(f"{n} answers {q} with {got}, NSD with {ref}")
        print(f"  {q}: {ref[0]}, {len(ref[1])} NSEC3 ({', '.join(o.split('.')[0][:8] for o in ref[1])}), "
              f"answer signed: {ref[3]}, same from {', '.join(servers)}", flush=True)


def rcodes(out):
    """{rcode: share of responses} of a dnsperf report."""
    line = re.search(r"Response codes:(.*)", out).group(1)
    return {m.group(1): round(float(m.group(2))) for m in re.finditer(r"(\w+) \d+ \(([\d.]+)%\)", line)}


# NSD adds the apex NS RRset (and its glue), signed, to every positive
# answer unless told not to; tandem and Knot don't. minimal-responses makes
# the three do the same work.
STARTERS = dict(bench.STARTERS, nsd=lambda w, z, p, b: bench.start_nsd(w, z, p, server_extra="  minimal-responses: yes\n"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--servers", default="tandem,nsd,knot")
    ap.add_argument("--cache", default="/var/tmp/tandem-signed-cache")
    ap.add_argument("--sign-only", action="store_true")
    args = ap.parse_args()
    for tool in ["nsd", "dnsperf", "dig", "dnssec-keygen", "dnssec-signzone"]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install nsd knot dnsperf bind9-dnsutils bind9-utils")
    zone = signed_zone(args.names, args.cache)
    records = record_count(zone)
    print(f"signed zone: {zone} ({os.path.getsize(zone) / 1e6:.0f} MB, about {records:,} records)", flush=True)
    if args.sign_only:
        return
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "tandem")
    names = args.servers.split(",")
    if "nsd" not in names:
        raise SystemExit("--servers needs nsd: ratios are to NSD")
    with tempfile.TemporaryDirectory(prefix="tandem-signed-") as workdir:
        queries = query_files(args.names, workdir)
        print("same proofs (dig +dnssec, each server against NSD):", flush=True)
        servers = {}
        try:
            for n in names:
                servers[n] = STARTERS[n](workdir, zone, bench.free_port(), binary)
                servers[n].wait_ready(600)
            check_same_proofs(servers, args.names)
        finally:
            for s in servers.values():
                s.stop()
        runs = {n: [] for n in names}
        for rnd in range(args.rounds):
            # The order rotates, so no server always follows the same one.
            for n in names[rnd % len(names):] + names[:rnd % len(names)]:
                s, t, peak = bench.load_once(lambda: STARTERS[n](workdir, zone, bench.free_port(), binary))
                try:
                    rss, pss = bench.memory_mb(s.proc.pid)
                    row = {"load": t, "peak": peak.mb(), "rss": rss, "pss": pss}
                    for kind, qfile in queries.items():
                        c0 = bench.cpu_seconds(s.proc.pid)
                        out = bench.run_dnsperf(s.port, qfile, args.seconds, ["-D"])
                        cpu = bench.cpu_seconds(s.proc.pid) - c0
                        qps, done, lost = bench.parse_dnsperf(out)
                        size = int(re.search(r"Average packet size:.*response (\d+)", out).group(1))
                        row[kind] = (qps, cpu / max(done, 1) * 1e6, lost, size, rcodes(out))
                finally:
                    s.stop()
                runs[n].append(row)
                print(f"  round {rnd + 1} {n:7} loaded in {t:.2f}s  peak {row['peak']:.0f} MB  RSS {rss:.0f} MB  "
                      f"PSS {pss:.0f} MB" + "".join(
                          f"  {k}: {row[k][0]:.0f} qps {row[k][1]:.2f} us/q lost {row[k][2]}% "
                          f"{row[k][3]} B/resp {row[k][4]}" for k in queries), flush=True)
    med = {n: {k: statistics.median(r[k] for r in v) for k in ("load", "peak", "rss", "pss")} |
           {k: (statistics.median(r[k][0] for r in v), statistics.median(r[k][1] for r in v),
                max(r[k][2] for r in v), v[0][k][3]) for k in queries}
           for n, v in runs.items()}
    b = med["nsd"]
    print(f"\nSigned zone (NSEC3, no salt, 0 iterations), {args.names} names, about {records:,} records; "
          f"median of {args.rounds} interleaved rounds")
    print("| server | start to first answer | time / NSD | peak RSS | steady RSS | RSS / NSD | PSS | PSS / NSD |")
    print("|---|---|---|---|---|---|---|---|")
    for n, m in med.items():
        print(f"| {n} | {m['load']:.2f} s | {m['load'] / b['load']:.2f} | {m['peak']:.0f} MB | {m['rss']:.0f} MB | "
              f"{m['rss'] / b['rss']:.2f} | {m['pss']:.0f} MB | {m['pss'] / b['pss']:.2f} |")
    for kind, what in (("mix", "50 % positive (A, AAAA), 50 % NXDOMAIN"), ("nxdomain", "NXDOMAIN only")):
        print(f"\nDO=1 UDP queries, {what}; dnsperf -D -T 2 -c 16 -q 200, {args.seconds} s, median of {args.rounds}")
        print("| server | qps | qps / NSD | server CPU per query | CPU / NSD | lost | response bytes |")
        print("|---|---|---|---|---|---|---|")
        for n, m in med.items():
            qps, us, lost, size = m[kind]
            print(f"| {n} | {qps:,.0f} | {qps / b[kind][0]:.2f} | {us:.2f} us | {us / b[kind][1]:.2f} | {lost}% | "
                  f"{size} |")


if __name__ == "__main__":
    main()
