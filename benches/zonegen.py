#!/usr/bin/env python3
"""Generates a benchmark zone and a dnsperf query file with a realistic mix.

usage: zonegen.py NAMES ORIGIN ZONEFILE [QUERYFILE]

Per name hN: an A record; every 2nd an AAAA; every 4th a TXT; every 25th an
MX; every 50th a CNAME cN -> hN; every 100th a delegation dN with glue.
For 1,000,000 names this is about 1.79 million records, like the zone the
peers were measured with. The query mix (existing names, NXDOMAIN, NODATA,
CNAME, referral, wildcard) is written when QUERYFILE is given.
"""
import random
import sys


def main():
    n = int(sys.argv[1])
    origin = sys.argv[2].rstrip(".") + "."
    zonefile = sys.argv[3]
    queryfile = sys.argv[4] if len(sys.argv) > 4 else None
    with open(zonefile, "w") as z:
        z.write(f"$ORIGIN {origin}\n$TTL 3600\n")
        z.write("@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n  NS ns1\n  NS ns2\n")
        z.write("ns1 A 192.0.2.1\nns2 A 192.0.2.2\n*.wild A 192.0.2.3\n  TXT \"wildcard\"\n")
        for i in range(n):
            a = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            z.write(f"h{i} A {a}\n")
            if i % 2 == 0:
                z.write(f"  AAAA 2001:db8::{i & 0xffff:x}:{(i >> 16) & 0xffff:x}\n")
            if i % 4 == 0:
                z.write(f"  TXT \"v=spf1 ip4:{a} -all\"\n")
            if i % 25 == 0:
                z.write(f"  MX 10 h{(i + 1) % n}\n")
            if i % 50 == 0:
                z.write(f"c{i} CNAME h{i}\n")
            if i % 100 == 0:
                z.write(f"d{i} NS ns.d{i}\nns.d{i} A 192.0.2.{i % 250 + 1}\n")
    if not queryfile:
        return
    rnd = random.Random(1)
    with open(queryfile, "w") as q:
        for _ in range(100_000):
            i = rnd.randrange(n)
            k = rnd.random()
            if k < 0.45:
                q.write(f"h{i}.{origin} A\n")
            elif k < 0.60:
                q.write(f"h{i - i % 2}.{origin} AAAA\n")
            elif k < 0.70:
                q.write(f"nx{i}.{origin} A\n")  # NXDOMAIN
            elif k < 0.78:
                q.write(f"h{i | 1}.{origin} TXT\n")  # NODATA
            elif k < 0.86:
                q.write(f"c{i - i % 50}.{origin} A\n")  # CNAME
            elif k < 0.93:
                q.write(f"www.d{i - i % 100}.{origin} A\n")  # referral
            else:
                q.write(f"x{i}.wild.{origin} A\n")  # wildcard


if __name__ == "__main__":
    main()
