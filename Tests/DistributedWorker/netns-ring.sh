#!/usr/bin/env bash
# Three "hosts" for the ring backend: network namespaces joined by veth pairs
# to a bridge in a fourth namespace (nothing changes in the caller's own
# network), each rank of tessera-dist-worker in its namespace at its own
# address. Everything is removed on exit. Needs root and iproute2.
#   netns-ring.sh WORKER MODE [ARGS...]   exit 0: every rank passed
#   exit 77: namespaces are not permitted here
set -uo pipefail
worker=$1; mode=$2; shift 2
tag="ts$$"
ns() { echo "${tag}n$1"; }
switch="${tag}sw"
cleanup() {
    for i in 0 1 2; do ip netns del "$(ns $i)" 2>/dev/null; done
    ip netns del "$switch" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$switch" 2>/dev/null || exit 77
ip -n "$switch" link add br0 type bridge && ip -n "$switch" link set br0 up || exit 77
ip -n "$switch" link set lo up
hosts=""
for i in 0 1 2; do
    ip netns add "$(ns $i)" || exit 77
    ip link add "${tag}a$i" type veth peer name "${tag}b$i" || exit 77
    ip link set "${tag}a$i" netns "$(ns $i)"
    ip link set "${tag}b$i" netns "$switch"
    ip -n "$switch" link set "${tag}b$i" master br0
    ip -n "$switch" link set "${tag}b$i" up
    ip -n "$(ns $i)" addr add "10.77.0.$((i + 1))/24" dev "${tag}a$i"
    ip -n "$(ns $i)" link set "${tag}a$i" up
    ip -n "$(ns $i)" link set lo up
    hosts="${hosts:+$hosts,}10.77.0.$((i + 1)):29500"
done
logs=$(mktemp -d)
pids=()
for i in 0 1 2; do
    TESSERA_RANK=$i TESSERA_WORLD_SIZE=3 TESSERA_RING_HOSTS=$hosts TESSERA_DIST_TIMEOUT=${TESSERA_DIST_TIMEOUT:-15} \
        ip netns exec "$(ns $i)" "$worker" "$mode" ring "$@" > "$logs/$i" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for i in 0 1 2; do sed "s/^/[$i] /" "$logs/$i"; done
rm -rf "$logs"
exit $status
