#!/usr/bin/env bash
# sdwan.sh: an SD-WAN edge node's topology, for the SD-WAN demo and tests.
#
#   ns sd-lan                 root (the edge: xvsd)               ns sd-isp1         ns sd-remote
#   [l0 10.10.0.10] <-veth-> [edge-lan  10.10.0.1]
#                            [edge-wan1 172.16.1.2] <-veth-> [pe1 172.16.1.1]
#                                                            [r1 192.168.1.1] <-veth-> [x1 192.168.1.2]
#                            [edge-wan2 172.16.2.2] <-veth-> [pe2 172.16.2.1]  (ns sd-isp2)
#                                                            [r2 192.168.2.1] <-veth-> [x2 192.168.2.2]
#                                                                          remote site 10.20.0.1 (lo)
#
# The LAN host's gateway is the edge (10.10.0.1). Each uplink leads to its
# own provider, a router namespace, and both providers reach the remote
# site. The remote site routes back to the branch over provider 1 (metric
# 10) and provider 2 (metric 20). Setting a provider's end of an uplink down
# (ip -n sd-isp1 link set pe1 down) takes the carrier off that uplink, as a
# dead modem or cable would.
#
# Usage: sdwan.sh setup | teardown | status
#        sdwan.sh exec lan|isp1|isp2|remote -- CMD [ARGS...]
#        sdwan.sh mac DEV        (edge-* in root, l0/pe1/pe2/x1/x2 in theirs)
#        sdwan.sh uplink 1|2 up|down
# Environment: XVS_SD_PREFIX (default sd) names the namespaces;
#              XVS_TRAFFIC is the xvs-traffic binary (default bin/xvs-traffic).
set -euo pipefail

P=${XVS_SD_PREFIX:-sd}
LAN=$P-lan ISP1=$P-isp1 ISP2=$P-isp2 REMOTE=$P-remote
HERE=$(cd "$(dirname "$0")" && pwd)
TRAFFIC=${XVS_TRAFFIC:-$HERE/../bin/xvs-traffic}

die() { echo "sdwan: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

ns_of() {
	case $1 in
	lan) echo "$LAN" ;;
	isp1) echo "$ISP1" ;;
	isp2) echo "$ISP2" ;;
	remote) echo "$REMOTE" ;;
	*) die "unknown namespace $1 (lan, isp1, isp2 or remote)" ;;
	esac
}

# mac DEV: the MAC address of one of the topology's devices.
mac() {
	case $1 in
	edge-*) cat "/sys/class/net/$1/address" ;;
	l0) ip netns exec "$LAN" cat /sys/class/net/l0/address ;;
	pe1 | r1) ip netns exec "$ISP1" cat "/sys/class/net/$1/address" ;;
	pe2 | r2) ip netns exec "$ISP2" cat "/sys/class/net/$1/address" ;;
	x1 | x2) ip netns exec "$REMOTE" cat "/sys/class/net/$1/address" ;;
	*) die "no device $1" ;;
	esac
}

setup() {
	need_root
	[ -x "$TRAFFIC" ] || die "$TRAFFIC not built: run make build"
	ulimit -l unlimited 2>/dev/null || true # see testenv.sh
	teardown quiet
	for ns in "$LAN" "$ISP1" "$ISP2" "$REMOTE"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		# Hosts and routers of their own: no reverse-path filtering.
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	done
	# Veths as users make them (one active queue); the edge's ends stay here.
	ip link add edge-lan type veth peer name l0 netns "$LAN"
	ip link add edge-wan1 type veth peer name pe1 netns "$ISP1"
	ip link add edge-wan2 type veth peer name pe2 netns "$ISP2"
	ip -n "$ISP1" link add r1 type veth peer name x1 netns "$REMOTE"
	ip -n "$ISP2" link add r2 type veth peer name x2 netns "$REMOTE"

	ip addr add 10.10.0.1/24 dev edge-lan
	ip addr add 172.16.1.2/30 dev edge-wan1
	ip addr add 172.16.2.2/30 dev edge-wan2
	for d in edge-lan edge-wan1 edge-wan2; do ip link set "$d" up; done

	ip -n "$LAN" addr add 10.10.0.10/24 dev l0
	ip -n "$LAN" link set l0 up
	ip -n "$LAN" route add default via 10.10.0.1

	local i
	for i in 1 2; do
		local isp=$P-isp$i
		ip -n "$isp" addr add "172.16.$i.1/30" dev "pe$i"
		ip -n "$isp" addr add "192.168.$i.1/30" dev "r$i"
		ip -n "$isp" link set "pe$i" up
		ip -n "$isp" link set "r$i" up
		ip netns exec "$isp" sysctl -qw net.ipv4.ip_forward=1
		ip -n "$isp" route add 10.20.0.0/24 via "192.168.$i.2"
		ip -n "$isp" route add 10.10.0.0/24 via "172.16.$i.2"
		ip -n "$REMOTE" addr add "192.168.$i.2/30" dev "x$i"
		ip -n "$REMOTE" link set "x$i" up
	done
	ip -n "$REMOTE" addr add 10.20.0.1/32 dev lo
	ip -n "$REMOTE" route add 10.10.0.0/24 via 192.168.1.1 metric 10
	ip -n "$REMOTE" route add 10.10.0.0/24 via 192.168.2.1 metric 20

	# Frames the switch forwards must carry their checksums: no TX
	# offload where they are made (hosts) or forwarded (routers).
	ip netns exec "$LAN" "$TRAFFIC" offloads-off l0
	for d in pe1 r1; do ip netns exec "$ISP1" "$TRAFFIC" offloads-off "$d"; done
	for d in pe2 r2; do ip netns exec "$ISP2" "$TRAFFIC" offloads-off "$d"; done
	for d in x1 x2; do ip netns exec "$REMOTE" "$TRAFFIC" offloads-off "$d"; done
	# GRO on the far ends, so the edge's ports take XDP-redirected frames:
	# flows XDP can carry out run in the XDP fast path.
	ip netns exec "$LAN" "$TRAFFIC" gro l0 on
	ip netns exec "$ISP1" "$TRAFFIC" gro pe1 on
	ip netns exec "$ISP2" "$TRAFFIC" gro pe2 on
	echo "sdwan: up: $LAN/l0 10.10.0.10 <-> edge-lan 10.10.0.1 [edge] edge-wan1 <-> $ISP1, edge-wan2 <-> $ISP2, both to $REMOTE 10.20.0.1"
}

teardown() {
	need_root
	for d in edge-lan edge-wan1 edge-wan2; do ip link del "$d" 2>/dev/null || true; done
	for ns in "$LAN" "$ISP1" "$ISP2" "$REMOTE"; do ip netns del "$ns" 2>/dev/null || true; done
	[ "${1:-}" = quiet ] || echo "sdwan: down"
}

status() {
	for d in edge-lan edge-wan1 edge-wan2; do
		ip -br link show "$d" 2>/dev/null || echo "$d: absent"
	done
	for ns in "$LAN" "$ISP1" "$ISP2" "$REMOTE"; do
		if ip netns list | grep -qw "$ns"; then
			echo "netns $ns:"
			ip -n "$ns" -br addr | sed 's/^/  /'
		else
			echo "netns $ns: absent"
		fi
	done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
setup) setup ;;
teardown) teardown ;;
status) status ;;
mac) [ $# = 1 ] || die "usage: sdwan.sh mac DEV"; mac "$1" ;;
uplink)
	[ $# = 2 ] || die "usage: sdwan.sh uplink 1|2 up|down"
	case $1 in 1 | 2) ;; *) die "uplink $1: 1 or 2" ;; esac
	case $2 in up | down) ;; *) die "uplink state $2: up or down" ;; esac
	ip -n "$P-isp$1" link set "pe$1" "$2"
	;;
exec)
	[ $# -ge 3 ] && [ "$2" = -- ] || die "usage: sdwan.sh exec lan|isp1|isp2|remote -- CMD [ARGS...]"
	ns=$(ns_of "$1")
	shift 2
	exec ip netns exec "$ns" "$@"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
