#!/usr/bin/env bash
# active-diag.sh: where the time goes with many active flows (issue 13).
#
# The topology and traffic of bench.sh --active (blast on CPU 0 out of g0,
# count on k0, xvsd --cpus 1), with, per window, beside the k0 rate: the
# frames blast offered, the average run time of the XDP programs on p0 and
# k0 (kernel.bpf_stats_enabled, run_time_ns / run_cnt from the fdinfo of
# the program's fd), and xvsd's port counters (xvsctl dump-ports) before and
# after. Optionally (PERF=1) a perf cpu-clock profile of CPU 0 per window.
#
# Usage: active-diag.sh [--seconds S] [--ks "1 100000"] [--table N]
#                       [--cases "xdp plain table"] [--xvsd-flags "..."]
#   cases: xdp    the bare redirect p0 -> p1 (the generator's own cost at K)
#          plain  xvs, in_port=p0,actions=output:p1 (the EMC still sees K keys)
#          table  xvs, the 100k exact 5-tuple table of bench.sh --active
#          base:table, base:plain  the same with $XVSD_BASE (a build before a change)
#          table:noemc, plain:noemc  the same with the XDP exact-match cache off
#                 (steer_gen set to 0 after the flows are in: emc.h skips the cache)
# Run as root, under flock /tmp/xvs-topo.lock flock /tmp/xvs-bench.lock.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../bin}
T=$BIN/xvs-traffic
export XVS_TE_PREFIX=xvsbench
export XVS_TRAFFIC=$T
TE=$HERE/testenv.sh
GEN=$XVS_TE_PREFIX-gen
SINK=$XVS_TE_PREFIX-sink
GEN_IP=10.100.0.1
SINK_IP=10.100.0.2
SECS=3
WARM=1
KS="1 1000 10000 100000"
TABLE=100000
CASES="xdp plain table"
XVSD_FLAGS=
ROUNDS=1
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECS=$2; shift 2 ;;
	--ks) KS=$2; shift 2 ;;
	--table) TABLE=$2; shift 2 ;;
	--cases) CASES=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--xvsd-flags) XVSD_FLAGS=$2; shift 2 ;;
	*) echo "unknown flag $1" >&2; exit 2 ;;
	esac
done
RUN=$(mktemp -d /tmp/xvs-diag.XXXXXX)
PS=$RUN/progstats
(cd "$HERE/.." && go build -o "$PS" ./testenv/progstats) || exit 1
SOCK=$RUN/xvsd.sock
export XVS_SERVER=unix:$SOCK
XVSD_PID=
AUX_PID=
OLD_STATS=$(cat /proc/sys/kernel/bpf_stats_enabled)
ctl() { "$BIN/xvsctl" --timeout 600s "$@"; }
cleanup() {
	set +e
	[ -z "$AUX_PID" ] || { kill "$AUX_PID"; wait "$AUX_PID"; } 2>/dev/null
	[ -z "$XVSD_PID" ] || { kill "$XVSD_PID"; wait "$XVSD_PID"; } 2>/dev/null
	"$TE" teardown >/dev/null 2>&1
	sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS"
	echo "diag: files in $RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_for() { local n=$(($1 * 10)); shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

prog_id() { # prog_id NETNS DEV: id of the XDP program on DEV
	local x=()
	[ "$1" = - ] || x=(ip netns exec "$1")
	"${x[@]}" ip -d link show "$2" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1
}
# prog_stats ID: "run_time_ns run_cnt" of program ID (testenv/progstats: cilium/ebpf Program.Stats)
prog_stats() {
	"$PS" "$1" | awk '{ print $2, $3 }'
}

start_xvsd() { # start_xvsd BINARY
	rm -f "$RUN/state.json"
	# shellcheck disable=SC2086
	"$1" --listen "unix:$SOCK" --state "$RUN/state.json" --cpus 1 $XVSD_FLAGS >>"$RUN/xvsd.log" 2>&1 &
	XVSD_PID=$!
	wait_for 10 "$BIN/xvsctl" show || return 1
	ctl add-port p0 >/dev/null && ctl add-port p1 >/dev/null
}
stop_aux() {
	[ -z "$XVSD_PID" ] || { kill "$XVSD_PID"; wait "$XVSD_PID"; } 2>/dev/null
	[ -z "$AUX_PID" ] || { kill "$AUX_PID"; wait "$AUX_PID"; } 2>/dev/null
	XVSD_PID= AUX_PID=
	wait_for 5 sh -c "! ip -d link show p0 | grep -q prog/xdp"
}

awk -v n="$TABLE" -v src="$GEN_IP" -v dst="$SINK_IP" 'BEGIN {
	for (m = 0; m < n; m++)
		printf "priority=100,udp,in_port=p0,nw_src=%s,nw_dst=%s,tp_src=%d,tp_dst=%d,actions=output:p1\n",
			src, dst, 1024 + m % 64512, 7999 + int(m / 64512)
}' >"$RUN/table.txt"

"$TE" setup >"$RUN/te.log" 2>&1 || { cat "$RUN/te.log"; exit 1; }
[ "${STATS:-1}" = 0 ] || sysctl -qw kernel.bpf_stats_enabled=1
K0MAC=$(ip netns exec "$SINK" cat /sys/class/net/k0/address)

# window CASE K
window() {
	local c=$1 k=$2 p0id k0id a b ka kb
	ip netns exec "$SINK" "$T" count --dev k0 --delay "$WARM" --seconds "$SECS" >"$RUN/count.out" 2>&1 &
	local cpid=$!
	wait_for 5 grep -q counting "$RUN/count.out"
	k0id=$(prog_id "$SINK" k0)
	p0id=$(prog_id - p0)
	taskset -c 0 ip netns exec "$GEN" "$T" blast --dev g0 --dst-mac "$K0MAC" --src-ip "$GEN_IP" --dst-ip "$SINK_IP" \
		--dst-port 7999 --size 64 --flows "$k" --seconds "$((WARM + SECS + 1))" >"$RUN/blast.out" 2>&1 &
	local bpid=$!
	sleep "$WARM"
	a=$(prog_stats "$p0id"); ka=$(prog_stats "$k0id")
	local ja jb
	ja=$("$PS" judge "$p0id" 2>/dev/null | awk '$1 == 0 { print $5 }')
	[ -z "$XVSD_PID" ] || ctl dump-ports >"$RUN/ports.a" 2>&1
	if [ "${PERF:-0}" = 1 ]; then
		perf record -q -e cpu-clock -C 0 -g -o "$RUN/perf.$c.$k.data" -- sleep "$SECS" >/dev/null 2>&1
	else
		sleep "$SECS"
	fi
	b=$(prog_stats "$p0id"); kb=$(prog_stats "$k0id")
	jb=$("$PS" judge "$p0id" 2>/dev/null | awk '$1 == 0 { print $5 }')
	# CPU 0 runs p0's XDP (the sender's softirq): windows that turned its
	# exact-match cache off over the window (a build with emc_judge)
	[ -z "$ja" ] || [ -z "$jb" ] || echo "$c K=$k: emc judge, cpu 0: $((jb - ja)) windows turned the cache off in ${SECS}s (each skips 3840 frames)"
	[ -z "$XVSD_PID" ] || ctl dump-ports >"$RUN/ports.b" 2>&1
	wait "$bpid"; wait "$cpid"
	local pps offered
	pps=$(sed -n 's/.* received [0-9]* packets in .*: \([0-9]*\) pps.*/\1/p' "$RUN/count.out")
	offered=$(sed -n 's/.*: \([0-9]*\) pps$/\1/p' "$RUN/blast.out")
	read -r at ac <<<"$a"; read -r bt bc <<<"$b"
	read -r kat kac <<<"$ka"; read -r kbt kbc <<<"$kb"
	awk -v c="$c" -v k="$k" -v pps="$pps" -v off="$offered" -v dt=$((bt - at)) -v dc=$((bc - ac)) \
		-v kdt=$((kbt - kat)) -v kdc=$((kbc - kac)) -v s="$SECS" 'BEGIN {
		printf "%-12s K=%-7d k0 %6.3f Mpps  offered %6.3f Mpps  p0 prog %7.1f ns/run (%.2f Mruns/s, %4.1f%% of a CPU)  k0 prog %5.1f ns/run\n",
			c, k, pps / 1e6, off / 1e6, dc ? dt / dc : 0, dc / s / 1e6, dt / s / 1e7, kdc ? kdt / kdc : 0 }'
	if [ -n "$XVSD_PID" ]; then
		# p0's XDP outcomes over the window
		awk 'FNR == 1 { f++ } /port +1:/ { p = 1; next } /port +[0-9]+:/ { p = 0 } p && /xdp rx=/ {
			gsub(/,/, ""); for (i = 2; i <= NF; i++) { split($i, kv, "="); v[f, kv[1]] = kv[2]; if (f == 1) names[++n] = kv[1] } }
			END { printf "%-12s   p0 xdp over the window:", ""; for (i = 1; i <= n; i++) { d = v[2, names[i]] - v[1, names[i]]; if (d) printf " %s=%d", names[i], d }; print "" }' \
			"$RUN/ports.a" "$RUN/ports.b"
		paste <(grep -iE 'xdp|forward|redirect|pass|user' "$RUN/ports.a") <(grep -iE 'xdp|forward|redirect|pass|user' "$RUN/ports.b") >>"$RUN/ports.diff" 2>/dev/null
		{ echo "--- $c K=$k"; cat "$RUN/ports.a"; echo "..."; cat "$RUN/ports.b"; } >>"$RUN/ports.log"
	fi
}

for round in $(seq "$ROUNDS"); do
	for c in $CASES; do
		bin=$BIN/xvsd
		case $c in base:*) bin=$XVSD_BASE ;; esac
		cc=${c#base:}
		case ${cc%:noemc} in
		xdp)
			"$T" xdp-redirect --from p0 --to p1 >>"$RUN/aux.log" 2>&1 &
			AUX_PID=$!
			wait_for 5 sh -c "ip -d link show p0 | grep -q prog/xdp"
			;;
		plain)
			start_xvsd "$bin" || exit 1
			ctl add-flow "in_port=p0,actions=output:p1" >/dev/null
			wait_for 5 sh -c "\"$BIN/xvsctl\" dump-flows | grep -qF datapath=xdp"
			;;
		table)
			start_xvsd "$bin" || exit 1
			ctl add-flows "$RUN/table.txt" >/dev/null
			wait_for 10 sh -c "\"$BIN/xvsctl\" dump-flows | grep -qF datapath=xdp"
			ctl dump-flows | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^datapath=/) n[$i]++ } END { for (d in n) printf "diag: %s: %d flows\n", d, n[d] }'
			;;
		esac
		if [ "${c%:noemc}" != "$c" ]; then
			# steer_gen 0: emc.h neither reads nor fills the cache
			"$PS" setgen "$(prog_id - p0)" 0 || exit 1
		fi
		for k in $KS; do window "$c" "$k"; done
		stop_aux
	done
done
