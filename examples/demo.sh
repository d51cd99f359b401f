#!/usr/bin/env bash
# The leader-follower loop in one minute: a primary and two secondaries as
# separate processes on loopback, an edit of the zone file, and dig showing
# the new serial on both secondaries. Needs dig (bind9-dnsutils).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="$PWD/target/release/tandem"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

cat > "$work/demo.test.zone" <<ZONE
\$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
     NS  ns1
ns1  A   192.0.2.1
www  A   192.0.2.80
ZONE
cat > "$work/primary.toml" <<TOML
[server]
listen = ["127.0.0.1:15353"]
control = "127.0.0.1:18053"
data_dir = "$work/primary"
[[zone]]
name = "demo.test."
role = "primary"
file = "$work/demo.test.zone"
notify = ["127.0.0.1:15354", "127.0.0.1:15355"]
TOML
for n in 1 2; do
  cat > "$work/secondary$n.toml" <<TOML
[server]
listen = ["127.0.0.1:1535$((3 + n))"]
control = "127.0.0.1:1805$((3 + n))"
data_dir = "$work/secondary$n"
[[zone]]
name = "demo.test."
role = "secondary"
primaries = ["127.0.0.1:15353"]
TOML
done

echo "== starting a primary (15353) and two secondaries (15354, 15355)"
"$bin" serve --config "$work/primary.toml" 2> "$work/primary.log" &
"$bin" serve --config "$work/secondary1.toml" 2> "$work/secondary1.log" &
"$bin" serve --config "$work/secondary2.toml" 2> "$work/secondary2.log" &

serial() { dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 demo.test SOA | awk '{print $3}'; }
wait_serial() {
  for _ in $(seq 100); do [ "$(serial "$1")" = "$2" ] && return 0; sleep 0.1; done
  echo "port $1 did not reach serial $2" >&2; return 1
}
wait_serial 15354 1; wait_serial 15355 1
echo "   serials: primary $(serial 15353), secondary1 $(serial 15354), secondary2 $(serial 15355)"

echo "== editing the zone file on the primary (a new record, same serial: tandem bumps it)"
echo "new  A   192.0.2.99" >> "$work/demo.test.zone"
wait_serial 15354 2; wait_serial 15355 2
for p in 15353 15354 15355; do
  echo "   port $p: $(dig +short -p $p @127.0.0.1 demo.test SOA | awk '{print "serial " $3}'), new.demo.test = $(dig +short -p $p @127.0.0.1 new.demo.test A)"
done

echo "== tandem status on the primary: each follower asked which serial it serves, and the"
echo "   time from publishing serial 2 until the last follower was confirmed serving it"
for _ in $(seq 50); do
  "$bin" status --control 127.0.0.1:18053 | grep -q "^  converged: serial 2" && break; sleep 0.1
done
"$bin" status --control 127.0.0.1:18053

echo "== shutting down"
kill $(jobs -p); wait 2>/dev/null || true
echo "done"
