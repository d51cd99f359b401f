#!/usr/bin/env python3
"""Zone transfers out: tandem against NSD and Knot, side by side in one run.

1. AXFR of a large zone (default 1M names, 1.83M records) from each server,
   read by a raw client that only sums ANCOUNT per length-prefixed message
   until the record count (taken once beforehand by a client that walks
   every record) is reached, as NSD's own speed tests read. The servers take
   turns within each round (the order rotates), and the median of the rounds
   is reported: seconds, ratio to NSD, the server's CPU seconds for the
   transfer (utime+stime of its process tree) and bytes on the wire.
2. IXFR of a large difference: a new version of the zone with every 10th
   name's address changed (serial 1 -> 2). Each server makes the difference
   from the edited zone file: tandem's primary on its own (it watches the
   file), NSD with `create-ixfr` after a SIGHUP, Knot with `zonefile-load:
   difference` after `knotc zone-reload`; NSD and Knot run with bench.py's
   settings plus those. tandem's AXFR is measured in the same rounds, for its
   IXFR-to-AXFR ratio. A server that answers AXFR-style is reported so.
3. Once: `dig AXFR` and `kdig AXFR` against tandem must count every record
   (they parse each one), with their wall time.

usage: benches/axfr.py [--big 1000000] [--rounds 5] [--changed 10]
                       [--skip-ixfr] [--skip-dig]
Needs: nsd, knot (knotd, knotc, kdig), dig; builds tandem --release.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (STARTERS, free_port, cpu_seconds, Server, skip_name)

ROOT = bench.ROOT
ORIGIN = bench.ORIGIN
AXFR, IXFR, SOA = 252, 251, 6


def wire_name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def transfer_query(qtype, serial=None):
    """An AXFR, or an IXFR carrying the client's SOA serial (RFC 1995 §3)."""
    ns = 0 if serial is None else 1
    q = b"\x12\x34\x00\x00\x00\x01\x00\x00" + ns.to_bytes(2, "big") + b"\x00\x00"
    q += wire_name(ORIGIN) + qtype.to_bytes(2, "big") + b"\x00\x01"
    if serial is not None:
        # Owner: pointer to the question name; MNAME and RNAME: the root.
        rdata = b"\x00\x00" + serial.to_bytes(4, "big") + bytes(16)
        q += b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x00" + len(rdata).to_bytes(2, "big") + rdata
    return q


def connect(port, q, tls=None):
    """A TCP connection to `port` (TLS when `tls` = (context, server name))
    with `q` sent on it."""
    import socket
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx, name = tls
        s = ctx.wrap_socket(s, server_hostname=name)
    s.sendall(len(q).to_bytes(2, "big") + q)
    return s


def read_exact(s, n, buf):
    view = memoryview(buf)[:n]
    got = 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if k == 0:
            raise SystemExit("connection closed mid-transfer")
        got += k
    return view


def raw_transfer(port, q, expected, tls=None):
    """Seconds and bytes to receive `expected` records; counts ANCOUNT only
    (over TLS when `tls` = (context, server name))."""
    buf = bytearray(65536)
    start = time.monotonic()
    s = connect(port, q, tls)
    records = total = 0
    while records < expected:
        n = int.from_bytes(read_exact(s, 2, buf), "big")
        msg = read_exact(s, n, buf)
        if msg[3] & 0xF:
            raise SystemExit(f"transfer refused by port {port} (rcode {msg[3] & 0xF})")
        records += int.from_bytes(msg[6:8], "big")
        total += n + 2
    s.close()
    return time.monotonic() - start, total


def soa_serial(msg, i):
    """The serial of the SOA rdata at `i`."""
    i = bench.skip_name(msg, i)
    i = bench.skip_name(msg, i)
    return int.from_bytes(msg[i:i + 4], "big")


def count_transfer(port, q):
    """Walks every record of a transfer: (records, bytes, incremental).
    Ends at the second SOA of the current serial (AXFR, or IXFR answered
    AXFR-style) or the third (an incremental IXFR, RFC 1995 §4)."""
    s = connect(port, q)
    f = s.makefile("rb", buffering=1 << 20)
    records = total = 0
    current = incremental = None
    seen = 0
    while True:
        hdr = f.read(2)
        if len(hdr) < 2:
            raise SystemExit(f"transfer from port {port} ended early after {records} records")
        msg = f.read(int.from_bytes(hdr, "big"))
        total += len(msg) + 2
        if msg[3] & 0xF:
            raise SystemExit(f"transfer refused by port {port} (rcode {msg[3] & 0xF})")
        qd, an = int.from_bytes(msg[4:6], "big"), int.from_bytes(msg[6:8], "big")
        i = 12
        for _ in range(qd):
            i = bench.skip_name(msg, i) + 4
        for _ in range(an):
            i = bench.skip_name(msg, i)
            rtype = int.from_bytes(msg[i:i + 2], "big")
            rdata = i + 10
            i = rdata + int.from_bytes(msg[i + 8:i + 10], "big")
            records += 1
            if rtype != SOA:
                if records == 2:
                    incremental = False
                continue
            serial = soa_serial(msg, rdata)
            if current is None:
                current = serial
            elif records == 2:
                incremental = serial != current
            if serial == current:
                seen += 1
        if records == 1 and an == 1:
            raise SystemExit(f"port {port} answered with its SOA alone: nothing to transfer")
        if seen == (3 if incremental else 2):
            s.close()
            return records, total, bool(incremental)


def start_nsd(workdir, zonefile, port):
    """As bench.py's NSD, with IXFR out made from zone-file differences
    (`create-ixfr`, NSD 4.5+); SIGHUP rereads a changed zone file."""
    return bench.start_nsd(workdir, zonefile, port,
                           zone_extra="  store-ixfr: yes\n  create-ixfr: yes\n  ixfr-size: 0\n")


def start_knot(workdir, zonefile, port):
    """As bench.py's Knot, with a journal of changes made from zone-file
    differences, so that it can serve IXFR after an edit."""
    return bench.start_knot(workdir, zonefile, port,
                            journal="    zonefile-load: difference\n    journal-content: changes\n"
                                    "    journal-max-usage: 2G\n")


def serial_of(port):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), ORIGIN, "SOA", "+short", "+time=1", "+tries=1"],
                       capture_output=True, text=True)
    parts = r.stdout.split()
    return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else None


def wait_serial(s, want, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serial_of(s.port) == want:
            return
        if s.proc.poll() is not None:
            raise SystemExit(f"{s.name} exited; see its log")
        time.sleep(0.2)
    raise SystemExit(f"{s.name} did not reach serial {want} within {timeout}s")


def edited_zone(src, dst, every):
    """The zone with serial 2 and the address of every `every`-th name hN
    changed: a difference of 2 records per changed name."""
    n = 0
    with open(src) as fi, open(dst + ".tmp", "w") as fo:
        for line in fi:
            if line.startswith("@ SOA "):
                line = line.replace(" hostmaster 1 ", " hostmaster 2 ")
            elif line.startswith("h") and " A 10." in line:
                i = int(line[1:line.index(" ")])
                if i % every == 0:
                    line = line.replace(" A 10.", " A 11.")
                    n += 1
            fo.write(line)
    os.rename(dst + ".tmp", dst)
    return n


def client_check(tool, port):
    """(records, seconds) of a `dig`/`kdig` AXFR, which parses every record."""
    t0 = time.monotonic()
    r = subprocess.run([tool, "@127.0.0.1", "-p", str(port), ORIGIN, "AXFR", "+noall", "+answer"],
                       capture_output=True, text=True)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"{tool} failed: {r.stderr.strip()}")
    records = sum(1 for line in r.stdout.splitlines() if line and not line.startswith(";"))
    return records, secs


def rounds(servers, jobs, n):
    """Each round runs every (server, query, expected) job once, the order
    rotating from round to round: {label: [(seconds, cpu, bytes)]}."""
    out = {label: [] for label, _, _, _ in jobs}
    for rnd in range(n):
        k = rnd % len(jobs)
        for label, name, q, expected in jobs[k:] + jobs[:k]:
            s = servers[name]
            before = bench.cpu_seconds(s.proc.pid)
            secs, size = raw_transfer(s.port, q, expected)
            # Let the server finish its bookkeeping before reading its CPU time.
            time.sleep(0.2)
            cpu = bench.cpu_seconds(s.proc.pid) - before
            out[label].append((secs, cpu, size))
            print(f"  round {rnd + 1} {label:14} {secs:7.3f} s  CPU {cpu:5.2f} s  {size / 1e6:6.1f} MB", flush=True)
    return out


def median(rows):
    return tuple(statistics.median(r[i] for r in rows) for i in range(3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--changed", type=int, default=10, help="percent of names changed for the IXFR")
    ap.add_argument("--skip-ixfr", action="store_true")
    ap.add_argument("--skip-dig", action="store_true")
    ap.add_argument("--binary", help="a tandem binary to use instead of building one")
    args = ap.parse_args()
    binary = args.binary
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "tandem")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(f"tandem {rev.stdout.strip() or '?'} ({binary})", flush=True)
    with tempfile.TemporaryDirectory(prefix="tandem-axfr-") as workdir:
        zone = os.path.join(workdir, "big.zone")
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "zonegen.py"), str(args.big), ORIGIN, zone],
                       check=True)
        servers = {
            "tandem": bench.STARTERS["tandem"](workdir, zone, bench.free_port(), binary),
            "nsd": start_nsd(workdir, zone, bench.free_port()),
            "knot": start_knot(workdir, zone, bench.free_port()),
        }
        try:
            for s in servers.values():
                s.wait_ready()
            axfr = transfer_query(AXFR)
            counts = {n: count_transfer(s.port, axfr) for n, s in servers.items()}
            expected = counts["nsd"][0]
            for n, (c, _, _) in counts.items():
                if c != expected:
                    raise SystemExit(f"{n} sent {c} records, NSD {expected}")
            print(f"AXFR: {expected:,} records from each server", flush=True)

            if not args.skip_dig:
                checks = {tool: client_check(tool, servers["tandem"].port) for tool in ("dig", "kdig")}

            jobs = [(n, n, axfr, expected) for n in servers]
            res = {k: median(v) for k, v in rounds(servers, jobs, args.rounds).items()}
            base = res["nsd"]
            print(f"\nAXFR out, {args.big:,} names ({expected:,} records), raw reader (sums ANCOUNT), "
                  f"median of {args.rounds} interleaved rounds")
            print("| server | seconds | time / NSD | server CPU s | CPU / NSD | MB on the wire | bytes / NSD |")
            print("|---|---|---|---|---|---|---|")
            for n, (secs, cpu, size) in res.items():
                print(f"| {n} | {secs:.3f} | {secs / base[0]:.2f} | {cpu:.2f} | {cpu / max(base[1], 1e-9):.2f} "
                      f"| {size / 1e6:.1f} | {size / base[2]:.3f} |")
            if not args.skip_dig:
                print("\nClients that parse every record, against tandem (once)")
                print("| client | records | seconds |")
                print("|---|---|---|")
                for tool, (c, secs) in checks.items():
                    print(f"| {tool} AXFR | {c:,} {'(all)' if c == expected else '(MISSING RECORDS)'} | {secs:.2f} |")
                    if c != expected:
                        raise SystemExit(f"{tool} counted {c} records, want {expected}")

            if args.skip_ixfr:
                return
            every = max(1, round(100 / args.changed))
            changed = edited_zone(zone, zone, every)
            print(f"\nIXFR: {changed:,} names changed (serial 1 -> 2); waiting for each server", flush=True)
            servers["nsd"].proc.send_signal(signal.SIGHUP)
            subprocess.run(["knotc", "-s", servers["knot"].control, "zone-reload", ORIGIN],
                           check=True, capture_output=True)
            for s in servers.values():
                wait_serial(s, 2)
            ixfr = transfer_query(IXFR, 1)
            ixfr_counts = {n: count_transfer(s.port, ixfr) for n, s in servers.items()}
            for n, (c, _, inc) in ixfr_counts.items():
                print(f"  {n}: {c:,} records, {'incremental' if inc else 'AXFR-style (the whole zone)'}")
            if not ixfr_counts["tandem"][2]:
                raise SystemExit("tandem answered the IXFR AXFR-style")
            jobs = [(f"{n} IXFR", n, ixfr, c) for n, (c, _, inc) in ixfr_counts.items() if inc]
            jobs.append(("tandem AXFR", "tandem", axfr, expected))
            res = {k: median(v) for k, v in rounds(servers, jobs, args.rounds).items()}
            print(f"\nIXFR out, {changed:,} of {args.big:,} names changed (serial 1 -> 2), raw reader, "
                  f"median of {args.rounds} interleaved rounds")
            print("| transfer | records | seconds | time / NSD IXFR | server CPU s | MB on the wire |")
            print("|---|---|---|---|---|---|")
            ref = res.get("nsd IXFR", (None,))[0]
            for label, (secs, cpu, size) in res.items():
                n = label.split()[0]
                records = ixfr_counts[n][0] if label.endswith("IXFR") else expected
                vs_nsd = f"{secs / ref:.2f}" if ref else "-"
                print(f"| {label} | {records:,} | {secs:.3f} | {vs_nsd} | {cpu:.2f} | {size / 1e6:.1f} |")
            for n, (_, _, inc) in ixfr_counts.items():
                if not inc:
                    print(f"| {n} IXFR | answered AXFR-style: not compared | | | | |")
            print(f"\ntandem's IXFR takes {res['tandem IXFR'][0] / res['tandem AXFR'][0]:.2f} of its AXFR's time "
                  "(servers that send more records for the same edit are slower for that reason too).")
        finally:
            for s in servers.values():
                s.stop()


if __name__ == "__main__":
    main()
