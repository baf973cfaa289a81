#!/usr/bin/env bash
# testenv.sh: namespace + veth topologies for xvs demos, tests and benchmarks.
#
#   ns ${P}-gen [g0] <-veth-> [p0] root --xvsd-- root [p1] <-veth-> [k0] ns ${P}-sink
#
# g0 10.100.0.1/24 and k0 10.100.0.2/24 are two hosts on one L2 segment that
# only the switch joins. p0 carries the host's own address 10.100.0.254/24, so
# traffic no flow wants (ARP, ping, ssh to the host) shows the kernel path.
# Static neighbour entries let the hosts talk without ARP through the switch.
# GRO is on on g0 and k0: a veth takes frames XDP redirects to it (what
# xvs's fast path sends out of p0 and p1) only while its peer has an XDP
# program or GRO. With --no-gro, p0 and p1 cannot be fast path outputs and
# xvs forwards every flow in userspace (dump-flows says why).
#
# Usage: testenv.sh setup [--queues N] [--no-gro] | teardown | status
#        testenv.sh exec gen|sink -- CMD [ARGS...]
#        testenv.sh send [xvs-traffic send flags]     (from gen, default to k0:7999)
#        testenv.sh sink [xvs-traffic sink flags]     (in sink, default on :7998)
# Environment: XVS_TE_PREFIX (default xvs) names the namespaces;
#              XVS_TRAFFIC is the xvs-traffic binary (default bin/xvs-traffic).
set -euo pipefail

P=${XVS_TE_PREFIX:-xvs}
GEN=$P-gen
SINK=$P-sink
HERE=$(cd "$(dirname "$0")" && pwd)
TRAFFIC=${XVS_TRAFFIC:-$HERE/../bin/xvs-traffic}
GEN_IP=10.100.0.1
SINK_IP=10.100.0.2
HOST_IP=10.100.0.254

die() { echo "testenv: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }
need_traffic() { [ -x "$TRAFFIC" ] || die "$TRAFFIC not built: run make build"; }
mac() { ip netns exec "$1" cat "/sys/class/net/$2/address"; }

setup() {
	local queues= q= gro=on
	while [ $# -gt 0 ]; do
		case $1 in
		--queues) queues=$2; shift 2 ;;
		--no-gro) gro=off; shift ;;
		*) die "setup: unknown flag $1" ;;
		esac
	done
	need_root
	need_traffic
	# AF_XDP UMEMs are locked memory. Raising the limit may be refused (no
	# CAP_SYS_RESOURCE); root registers UMEMs anyway through CAP_IPC_LOCK.
	ulimit -l unlimited 2>/dev/null || true
	teardown quiet
	ip netns add "$GEN"
	ip netns add "$SINK"
	ip -n "$GEN" link set lo up
	ip -n "$SINK" link set lo up
	# Without --queues the veths are made as users make them: the kernel's
	# queue counts (one queue per CPU allocated, one active).
	[ -z "$queues" ] || q="numtxqueues $queues numrxqueues $queues"
	# shellcheck disable=SC2086 # $q is two options or none
	ip link add p0 $q type veth peer name g0 $q netns "$GEN"
	# shellcheck disable=SC2086
	ip link add p1 $q type veth peer name k0 $q netns "$SINK"
	ip addr add "$HOST_IP/24" dev p0
	ip link set p0 up
	ip link set p1 up
	ip -n "$GEN" addr add "$GEN_IP/24" dev g0
	ip -n "$SINK" addr add "$SINK_IP/24" dev k0
	ip -n "$GEN" link set g0 up
	ip -n "$SINK" link set k0 up
	ip netns exec "$GEN" "$TRAFFIC" offloads-off g0
	ip netns exec "$SINK" "$TRAFFIC" offloads-off k0
	ip netns exec "$GEN" "$TRAFFIC" gro g0 "$gro"
	ip netns exec "$SINK" "$TRAFFIC" gro k0 "$gro"
	ip -n "$GEN" neigh replace "$SINK_IP" lladdr "$(mac "$SINK" k0)" dev g0 nud permanent
	ip -n "$SINK" neigh replace "$GEN_IP" lladdr "$(mac "$GEN" g0)" dev k0 nud permanent
	echo "testenv: up: $GEN/g0 $GEN_IP <-> p0 ($HOST_IP) [switch] p1 <-> $SINK/k0 $SINK_IP, ${queues:-default} queue(s)"
	if [ $gro = on ]; then
		echo "testenv: GRO on g0 and k0, so p0 and p1 take XDP-redirected frames (xvs's fast path)"
	else
		echo "testenv: GRO off on g0 and k0: p0 and p1 take no XDP-redirected frames (xvs forwards in userspace)"
	fi
}

teardown() {
	need_root
	ip link del p0 2>/dev/null || true
	ip link del p1 2>/dev/null || true
	ip netns del "$GEN" 2>/dev/null || true
	ip netns del "$SINK" 2>/dev/null || true
	[ "${1:-}" = quiet ] || echo "testenv: down"
}

status() {
	for dev in p0 p1; do
		ip -br link show "$dev" 2>/dev/null || echo "$dev: absent"
		ip -d link show "$dev" 2>/dev/null | grep -o 'prog/xdp[^ ]* id [0-9]*' || true
	done
	for ns in "$GEN" "$SINK"; do
		if ip netns list | grep -qw "$ns"; then
			echo "netns $ns:"
			ip -n "$ns" -br addr | sed 's/^/  /'
		else
			echo "netns $ns: absent"
		fi
	done
}

ns_of() {
	case $1 in
	gen) echo "$GEN" ;;
	sink) echo "$SINK" ;;
	*) die "unknown host $1 (gen or sink)" ;;
	esac
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
setup) setup "$@" ;;
teardown) teardown ;;
status) status ;;
exec)
	[ $# -ge 3 ] && [ "$2" = -- ] || die "usage: testenv.sh exec gen|sink -- CMD [ARGS...]"
	ns=$(ns_of "$1")
	shift 2
	exec ip netns exec "$ns" "$@"
	;;
send)
	need_traffic
	[ $# -gt 0 ] || set -- --to "$SINK_IP:7999"
	exec ip netns exec "$GEN" "$TRAFFIC" send "$@"
	;;
sink)
	need_traffic
	[ $# -gt 0 ] || set -- --listen "$SINK_IP:7998"
	exec ip netns exec "$SINK" "$TRAFFIC" sink "$@"
	;;
*)
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
	[ -z "$cmd" ] || [ "$cmd" = help ] || exit 2
	;;
esac
