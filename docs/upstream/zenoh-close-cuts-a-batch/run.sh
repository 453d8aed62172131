#!/bin/bash
# Runs the reproducer ROUNDS times (default 10) between two network namespaces joined by a veth
# pair, with small TCP socket buffers so that the publisher's socket is full when it closes.
# Needs root and iproute2; removes the namespaces on exit.
set -eu
rounds=${1:-10}
n=2000
bin=${BIN:-/tmp/zenoh-close-repro/release/zenoh-close-repro}
out=$(mktemp)
rx=zcr-rx; tx=zcr-tx; endpoint=tcp/10.231.0.1:7447
trap 'ip netns del $rx 2>/dev/null; ip netns del $tx 2>/dev/null; rm -f "$out"' EXIT
ip netns add $rx; ip netns add $tx
ip link add zcr-r netns $rx type veth peer name zcr-t netns $tx
ip -n $rx addr add 10.231.0.1/30 dev zcr-r; ip -n $tx addr add 10.231.0.2/30 dev zcr-t
for ns in $rx $tx; do ip -n $ns link set lo up; done
ip -n $rx link set zcr-r up; ip -n $tx link set zcr-t up
for s in net.ipv4.tcp_wmem net.ipv4.tcp_rmem; do
  ip netns exec $tx sysctl -qw "$s=4096 16384 16384"
  ip netns exec $rx sysctl -qw "$s=4096 32768 32768"
done
failed=0
for i in $(seq "$rounds"); do
  ip netns exec $rx "$bin" recv $endpoint $n > "$out" &
  receiver=$!
  ip netns exec $tx "$bin" send $endpoint $n > /dev/null
  wait $receiver || true
  echo "round $i: $(cat "$out")"
  grep -q '^OK' "$out" || failed=$((failed + 1))
done
echo "$failed of $rounds rounds failed"
