#!/usr/bin/env bash
# bench.sh: xvs side by side with its peers, the method of shared/PERF.md.
#
#   ns gen [g0] <-veth-> [p0] root --SYSTEM-- root [p1] <-veth-> [k0] ns sink
#
# The kernel is the traffic source: xvs-traffic blast (BPF_PROG_RUN live
# frames) offers 64-byte UDP frames out of g0 as fast as it can, pinned to
# CPU 0. xvs-traffic count on k0 counts what arrives with an XDP program and
# drops it. Each SYSTEM forwards p0 -> p1 with its forwarding pinned to CPU 1:
#   xvs          xvsd --cpus 1, flow in_port=p0,actions=output:p1, which runs
#                in the XDP fast path (the default; p1 takes redirected frames)
#   xvs-rewrite  the same with udp,tp_dst=7999 -> mod_tp_dst:7998,output:p1
#   xvs-user     xvsd --cpus 1 --fast-path=off: the plain flow in userspace
#   xvs-user-rewrite  the rewrite flow in userspace
#   xdp          in-kernel XDP bpf_redirect p0 -> p1 (xvs-traffic xdp-redirect)
#   bridge       Linux bridge with p0 and p1
#   ovs          Open vSwitch userspace datapath, type=afxdp ports, PMD on CPU 1
#   ovs-rewrite  the same with the rewrite flow
# Every system runs in the same invocation, interleaved over the rounds
# (A B C ... A B C ...), and the table gives the median and the spread of
# the packets per second received at k0, the CPU of the forwarding process
# over the same window (/proc/PID/stat utime+stime), and ratios to OVS (to
# xvs-user when OVS is absent) and to the bare XDP redirect. A round of an
# xvs system fails unless dump-flows says its flow runs where it should
# (datapath=xdp with the fast path, datapath=user(fast_path_off) without).
# In the fast path the frames never leave p0's NAPI softirq: like xdp and
# bridge it runs on the generator's CPU (see --kernel-napi), and xvsd's
# own CPU is near zero. Then xvsd's (and OVS's) idle CPU, and the time to
# install 1k, 10k and 160k flows in one request.
#
# Where the kernel forwards (xdp, bridge) it does so in p0's NAPI softirq,
# which by default runs on the CPU that queued the frame: the generator's
# CPU 0. --kernel-napi threaded moves p0's NAPI to a kernel thread pinned to
# CPU 1 (and measures its CPU); on this VM that hand-off costs the kernel
# paths about 3/4 of their rate (measured: xdp 3.9 Mpps inline vs 1.0 threaded).
# veth accepts redirected frames only if the receiving end runs NAPI: an XDP
# program or GRO. The switches put an XDP program on p0, k0 has count's; for
# the bridge --bridge-rx chooses an XDP_PASS program on p0 (default; it also
# counts what the bridge was offered) or GRO on p0 (ethtool -K p0 gro on;
# measured here at about 60% of the XDP_PASS rate).
#
# --pair S adds, after the rounds, S seconds of xvs-traffic pair for xvs and
# for xvs-rewrite: the fast path and a bare XDP redirect on a second,
# identical veth chain (gr0 -> pr0 -> pr1 -> kr0) get the same frames in
# alternating 0.5 s slices from one sending thread on CPU 0, and the ratio
# of each pair of slices is taken, as measured (rate) and per CPU-second of
# the sender (the rate each path would have on a CPU of its own; the
# forwarding runs in the sender's softirq). On a shared machine the rounds'
# ratio swings with whatever else ran in each 5 s window; slices half a
# second apart see nearly the same machine. The pair sends flat out
# (--rate does not apply).
#
# Usage: bench.sh [--rounds R] [--seconds S] [--systems "xvs xdp ..."]
#                 [--with-ovs] [--install-sizes "1000 10000 160000"] [--pair S]
#                 [--rate PPS] [--flows K] [--size BYTES]   (--rate: average,
#                 in line-rate bursts of 1/4 s worth: each live-frames call
#                 costs the kernel ~25ms, so the source cannot pace finely)
#                 [--kernel-napi inline|threaded] [--bridge-rx xdp-pass|gro]
#        bench.sh --latency [--rates "500 5000"] [--requests N] [--rounds R]
#                 [--systems "xvs xvs-user ovs bridge"] [--with-ovs] [--xvsd-base PATH]
#                 [--rt PRIO]
#
# --latency measures round trips instead of throughput: xvs-traffic echo in
# the sink namespace answers xvs-traffic ping from the gen namespace (both
# on CPU 0), through each system in both directions (p0 -> p1 and back, one
# output flow each), N requests (default 10000) at each rate of --rates
# requests per second, on a fixed schedule. Per system and rate it gives
# the median and spread over the rounds of the RTT p50 and p99, the largest
# max, and the forwarding CPU over the same window; per system, the idle
# CPU over 3 s before the first request (ports up, no traffic), and for xvs
# the poller's sleeps and wakes per second. Systems here: bridge, ovs, xvs
# (both flows in the XDP fast path: no poller sees the frames), xvs-user
# (--fast-path=off: the pollers forward), and xvs/FLAG=VALUE[,FLAG=VALUE]:
# xvsd run with --FLAG VALUE... (e.g. xvs/fast-path=off,poll-mode=busy),
# to set poll modes side by side; with --xvsd-base
# PATH, xvs-base is that xvsd binary (a build from before a change) with
# the same ports and flows, for a before-and-after in one run; loopback is
# no switch and no veth: ping to an echo on 127.0.0.1 in the gen
# namespace, the machine's own floor (its max shows the VM's stalls).
# --rt PRIO runs ping and echo under SCHED_FIFO at PRIO (chrt -f), so that
# whatever else the machine runs on CPU 0 (a build, a kworker) cannot
# delay the measuring programs themselves; the switches are left as they
# are. 0 (the default) runs them as ordinary tasks. Measured here with a
# build beside it (load 4): loopback max 15.7 ms -> 2.1 ms, xvs max 2.8 ms
# -> 0.93 ms, but p50 doubled (xvs 57 -> 137 us): Go's runtime spins for
# work before it sleeps, and at that priority nothing else on the CPU
# runs meanwhile. It shows where the max comes from; compare p50s without.
#        bench.sh --active "1 1000 10000 100000" [--table N] [--rounds R]
#                 [--systems "xvs xvs-user ovs xvs-base"] [--with-ovs] [--seconds S]
#                 [--xvsd-base PATH]
#
# --active measures many active flows: each system gets a table of N
# (default 100000) exact-match 5-tuple flows, priority=100,udp,in_port=p0,
# nw_src=GEN,nw_dst=SINK,tp_src=S,tp_dst=D,actions=output:p1, installed
# once per round, and then one window per count K of --active in which
# blast cycles through K of those 5-tuples (--flows K: source ports from
# 1024 up to 65535, then the next destination port from 7999). In each
# round xvs's plain one-flow table (the xvs system above) runs too, as its
# "1-flow rate". The warm-up is 2 s (OVS sets up a datapath flow per
# 5-tuple on their first packets). The table gives the Mpps per system and
# K, and per round the ratios to OVS, to the system's own first K of
# --active (1 by default: its 1-flow rate) and to xvs's plain table;
# xvs-base (with --xvsd-base PATH) is another xvsd build beside xvs, and
# xvs/FLAG=VALUE,... runs xvsd with those flags (as with --latency), e.g.
# xvs/fast-path-flows=131072 for a fast path that runs all 100k flows.
# Run as root after make build. OVS is benchmarked only with --with-ovs,
# which installs openvswitch-switch if needed (and keeps its system service
# stopped); its daemons run on a private database in a temporary directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../bin}
T=$BIN/xvs-traffic
export XVS_TE_PREFIX=xvsbench
export XVS_TRAFFIC=$T
TE=$HERE/testenv.sh
GEN=$XVS_TE_PREFIX-gen
SINK=$XVS_TE_PREFIX-sink
BR=xvsbench-br
OVSBR=xvsbench-ovs
GEN_IP=10.100.0.1
SINK_IP=10.100.0.2

ROUNDS=5
SECS=5
WARM=1
SYSTEMS="xvs xvs-rewrite xvs-user xvs-user-rewrite xdp bridge ovs ovs-rewrite"
WITH_OVS=0
SIZES="1000 10000 160000"
RATE=0
FLOWS=1
SIZE=64
KNAPI=inline
BRIDGE_RX=xdp-pass
GEN_CPU=0
FWD_CPU=1
PAIR=0
PAIR_DEVS="pr0 pr1"
LATENCY=0
RATES="500 5000"
REQUESTS=10000
RT=0
SYSTEMS_SET=0
ECHO_PORT=7000
XVSD_BASE=
ACTIVE=
TABLE=100000
TABLE_FILE=

die() { echo "bench: $*" >&2; exit 1; }
# usage prints the comment at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--systems) SYSTEMS=$2; SYSTEMS_SET=1; shift 2 ;;
	--latency) LATENCY=1; shift ;;
	--rates) RATES=$2; shift 2 ;;
	--requests) REQUESTS=$2; shift 2 ;;
	--rt) RT=$2; shift 2 ;;
	--xvsd-base) XVSD_BASE=$2; shift 2 ;;
	--with-ovs) WITH_OVS=1; shift ;;
	--install-sizes) SIZES=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--flows) FLOWS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--kernel-napi) KNAPI=$2; shift 2 ;;
	--bridge-rx) BRIDGE_RX=$2; shift 2 ;;
	--pair) PAIR=$2; shift 2 ;;
	--active) ACTIVE=$2; shift 2 ;;
	--table) TABLE=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown flag $1" ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ ]] || die "--rounds and --seconds take positive integers"
[[ $PAIR =~ ^[0-9]+$ ]] || die "--pair takes seconds (0: off)"
[[ $LATENCY = 0 || $PAIR = 0 ]] || die "--pair measures throughput: it does not combine with --latency"
[[ $KNAPI == inline || $KNAPI == threaded ]] || die "--kernel-napi is inline or threaded"
[[ $BRIDGE_RX == xdp-pass || $BRIDGE_RX == gro ]] || die "--bridge-rx is xdp-pass or gro"
[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests takes a positive integer"
[[ $RT =~ ^[0-9]+$ && $RT -le 99 ]] || die "--rt takes a SCHED_FIFO priority 1..99, or 0 for none"
[[ $RT = 0 || $LATENCY = 1 ]] || die "--rt applies to --latency's ping and echo only"
for r in $RATES; do [[ $r =~ ^[1-9][0-9]*$ ]] || die "--rates takes positive integers (requests per second), got $r"; done
if [ -n "$ACTIVE" ]; then
	[ $LATENCY = 0 ] && [ "$PAIR" = 0 ] || die "--active measures forwarding with many flows: it does not combine with --latency or --pair"
	[[ $TABLE =~ ^[1-9][0-9]*$ ]] || die "--table takes a positive integer (flows)"
	for k in $ACTIVE; do
		[[ $k =~ ^[1-9][0-9]*$ ]] && [ "$k" -le "$TABLE" ] || die "--active takes positive integers up to --table ($TABLE), got $k"
	done
	[ $SYSTEMS_SET = 1 ] || SYSTEMS="xvs xvs-user ovs"
	for sys in $SYSTEMS; do
		case $sys in
		xvs | xvs/* | xvs-user | ovs) ;;
		xvs-base) [ -x "$XVSD_BASE" ] || die "xvs-base needs --xvsd-base PATH (an xvsd binary)" ;;
		*) die "--active runs xvs, xvs/FLAG=VALUE,..., xvs-user, ovs and xvs-base, not $sys" ;;
		esac
	done
	WARM=2
fi
if [ $LATENCY = 1 ]; then
	[ $SYSTEMS_SET = 1 ] || SYSTEMS="xvs xvs-user ovs bridge"
	for sys in $SYSTEMS; do
		case $sys in
		xvs | xvs/* | xvs-user | ovs | bridge | loopback) ;;
		xvs-base) [ -x "$XVSD_BASE" ] || die "xvs-base needs --xvsd-base PATH (an xvsd binary)" ;;
		*) die "--latency runs bridge, ovs, xvs, xvs-user, xvs/FLAG=VALUE,..., xvs-base and loopback, not $sys" ;;
		esac
	done
fi
[ "$(id -u)" = 0 ] || die "must run as root"
for b in xvsd xvsctl xvs-traffic; do
	[ -x "$BIN/$b" ] || die "$BIN/$b missing: run make build"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (generator on CPU $GEN_CPU, switch on CPU $FWD_CPU)"
command -v ethtool >/dev/null || die "needs ethtool (apt-get install ethtool)"
# testenv.sh names the root ends p0 and p1: never tear down someone else's.
for dev in p0 p1 $([ "$PAIR" = 0 ] || echo "$PAIR_DEVS"); do
	! ip link show "$dev" >/dev/null 2>&1 || die "$dev already exists (another testenv run?); not touching it"
done

RUN=$(mktemp -d /tmp/xvs-bench.XXXXXX)
LOG=$RUN/bench.log
RES=$RUN/results
: >"$RES"
SOCK=$RUN/xvsd.sock
export XVS_SERVER=unix:$SOCK
XVSD_PID=
AUX_PID=
PAIR_XDP_PID=
OVSDB_PID=
OVSD_PID=
OVS_OK=0
OVS_WHY="not requested (pass --with-ovs)"
BG_PIDS=()

log() { echo "$*" >>"$LOG"; }
say() { echo "bench: $*"; log "bench: $*"; }
ctl() { "$BIN/xvsctl" --timeout 600s "$@"; }
vsctl() { ovs-vsctl --db="unix:$RUN/ovs/db.sock" --timeout=30 "$@"; }

stop_pid() { # stop_pid PID: TERM, wait up to 5s, then KILL; only our own children
	local pid=$1
	[[ $pid =~ ^[1-9][0-9]*$ ]] && [ "$pid" -gt 1 ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

forget_pid() { # forget_pid PID: drop PID from BG_PIDS
	local p keep=()
	for p in "${BG_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	BG_PIDS=("${keep[@]}")
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for pid in "${BG_PIDS[@]}" "$AUX_PID"; do stop_pid "$pid"; done
	stop_xvsd
	if [ -n "$OVSD_PID" ]; then
		vsctl --if-exists del-br "$OVSBR" >/dev/null 2>&1
		stop_pid "$OVSD_PID"
	fi
	stop_pid "$OVSDB_PID"
	ip link del "$BR" 2>/dev/null
	if [ "$PAIR" != 0 ]; then
		for dev in $PAIR_DEVS; do ip link del "$dev" 2>/dev/null; done
	fi
	"$TE" teardown >/dev/null 2>&1
	if [ $rc -ne 0 ]; then
		echo "bench: failed (exit $rc); log kept in $RUN" >&2
	else
		rm -rf "$RUN"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ---------------------------------------------------------------

cputicks() { # utime+stime of PID in ticks (all threads)
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# thread_snap PID: "tid comm on-cpu-ns runqueue-wait-ns voluntary involuntary"
# for every thread of PID (schedstat and context switches).
thread_snap() {
	local t
	for t in /proc/"$1"/task/*; do
		printf '%s %s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm")" "$(cut -d' ' -f1,2 "$t/schedstat")" \
			"$(awk '/^voluntary_ctxt_switches/ { v = $2 } /^nonvoluntary_ctxt_switches/ { n = $2 } END { print v, n }' "$t/status")"
	done 2>/dev/null
}

# busiest_thread A B SECONDS: from two thread_snap files, the thread that ran
# most: "comm on-cpu% runqueue-wait% voluntary/s involuntary/s".
busiest_thread() {
	awk -v s="$3" 'NR == FNR { r[$1] = $3; w[$1] = $4; v[$1] = $5; n[$1] = $6; next }
		($1 in r) && $3 - r[$1] > best { best = $3 - r[$1]; c = $2; dw = $4 - w[$1]; dv = $5 - v[$1]; dn = $6 - n[$1] }
		END { if (best > 0) printf "%s %.1f %.1f %.0f %.0f\n", c, best / s / 1e7, dw / s / 1e7, dv / s, dn / s }' "$1" "$2"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

wait_for() { # wait_for SECONDS CMD...: poll CMD every 0.1s
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

has_xdp() { ip -d link show "$1" 2>/dev/null | grep -q 'prog/xdp'; }

start_xvsd() { # start_xvsd [XVSD FLAGS...]
	rm -f "$RUN/xvsd-state.json"
	# shellcheck disable=SC2086 # XVSD_ARGS: flags from a system name xvs/FLAG=VALUE,...
	"${XVSD_BIN:-$BIN/xvsd}" --listen "unix:$SOCK" --state "$RUN/xvsd-state.json" --cpus "$FWD_CPU" ${XVSD_ARGS:-} "$@" >>"$RUN/xvsd.log" 2>&1 &
	XVSD_PID=$!
	if ! wait_for 10 "$BIN/xvsctl" show; then
		tail -5 "$RUN/xvsd.log" >&2
		return 1
	fi
	ctl add-port p0 >>"$LOG" && ctl add-port p1 >>"$LOG"
}

stop_xvsd() {
	[ -n "$XVSD_PID" ] || return 0
	stop_pid "$XVSD_PID"
	XVSD_PID=
}

napi_pid() { # the NAPI kthread of p0 (threaded mode)
	ps -eo pid=,comm= | awk '$2 ~ /^napi\/p0-/ { print $1; exit }'
}

threaded_napi_on() {
	echo 1 >/sys/class/net/p0/threaded
	local pid
	wait_for 5 napi_pid || return 1
	pid=$(napi_pid)
	taskset -pc "$FWD_CPU" "$pid" >/dev/null
	FWD_PIDS=$pid
}

threaded_napi_off() { echo 0 >/sys/class/net/p0/threaded 2>/dev/null || true; }

REWRITE_FLOW="priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1"
PLAIN_FLOW="in_port=p0,actions=output:p1"
BACK_FLOW="in_port=p1,actions=output:p0" # latency: the replies

# xvsd_args SYS: the xvsd flags of a system named xvs/FLAG=VALUE,...
xvsd_args() {
	local spec=${1#xvs} kv out=
	spec=${spec#/}
	[ -n "$spec" ] || return 0
	local IFS=,
	for kv in $spec; do
		out="$out --${kv%%=*}"
		[[ $kv != *=* ]] || out="$out ${kv#*=}"
	done
	echo "$out"
}

# setup_sys SYS: make SYS forward p0 -> p1; sets FWD_PIDS (pids to charge).
setup_sys() {
	FWD_PIDS=
	AUX_PID=
	case $1 in
	xvs | xvs/* | xvs-rewrite | xvs-user | xvs-user-rewrite | xvs-base)
		local where=datapath=xdp
		case $1 in
		xvs/*) XVSD_ARGS=$(xvsd_args "$1") ;;
		*) XVSD_ARGS= ;;
		esac
		[ "$1" != xvs-base ] || XVSD_BIN=$XVSD_BASE
		if [ "${1#xvs-user}" != "$1" ]; then
			start_xvsd --fast-path=off || return 1
		else
			start_xvsd || return 1
		fi
		case " $XVSD_ARGS " in
		*" --fast-path off "*) where="datapath=user(fast_path_off)" ;;
		esac
		[ "${1#xvs-user}" = "$1" ] || where="datapath=user(fast_path_off)"
		[ "$1" != xvs-base ] || where= # a build from before may not say
		XVSD_ARGS= XVSD_BIN=
		if [ -n "$TABLE_FILE" ]; then
			ctl add-flows "$TABLE_FILE" >/dev/null || return 1
		else
			case $1 in
			*-rewrite) ctl add-flow "$REWRITE_FLOW" ;;
			*) ctl add-flow "$PLAIN_FLOW" ;;
			esac
		fi
		[ $LATENCY = 0 ] || ctl add-flow "$BACK_FLOW"
		ctl dump-flows | head -5
		if [ -n "$where" ]; then
			# Give the fast path a moment: a port's redirect capability is
			# read from netlink, so the first dump may still say user.
			wait_for 5 sh -c "\"$BIN/xvsctl\" dump-flows | grep -qF '$where'" ||
				{ echo "$1: the flow does not run where it should ($where)"; ctl dump-flows; return 1; }
		fi
		FWD_PIDS=$XVSD_PID
		;;
	xdp)
		"$T" xdp-redirect --from p0 --to p1 >>"$LOG" 2>&1 &
		AUX_PID=$!
		wait_for 5 has_xdp p0 || return 1
		[ "$KNAPI" = inline ] || threaded_napi_on || return 1
		;;
	bridge)
		ip link add "$BR" type bridge && ip link set "$BR" up &&
			ip link set p0 master "$BR" && ip link set p1 master "$BR" || return 1
		if [ $LATENCY = 1 ]; then
			: # the hosts' own frames: skbs, no XDP or GRO needed
		elif [ "$BRIDGE_RX" = gro ]; then
			ethtool -K p0 gro on >/dev/null
		else
			"$T" count --pass --dev p0 --seconds 86400 >"$RUN/bridge-p0.out" 2>&1 &
			AUX_PID=$!
			wait_for 5 has_xdp p0 || return 1
		fi
		[ "$KNAPI" = inline ] || threaded_napi_on || return 1
		# Wait out the bridge's forwarding delay (STP is off: 0-2s).
		wait_for 5 sh -c "bridge link show dev p0 | grep -q forwarding" || return 1
		;;
	ovs | ovs-rewrite)
		vsctl add-port "$OVSBR" p0 -- set interface p0 type=afxdp options:xdp-mode=native \
			-- add-port "$OVSBR" p1 -- set interface p1 type=afxdp options:xdp-mode=native >>"$LOG" 2>&1 || return 1
		wait_for 10 sh -c "ip -d link show p0 | grep -q prog/xdp && ip -d link show p1 | grep -q prog/xdp" || return 1
		ovs-ofctl del-flows "$OVSBR"
		if [ -n "$TABLE_FILE" ]; then
			ovs-ofctl --bundle add-flows "$OVSBR" "$TABLE_FILE" || return 1
		elif [ "$1" = ovs ]; then
			ovs-ofctl add-flow "$OVSBR" "$PLAIN_FLOW"
		else
			ovs-ofctl add-flow "$OVSBR" "$REWRITE_FLOW"
		fi
		[ $LATENCY = 0 ] || ovs-ofctl add-flow "$OVSBR" "$BACK_FLOW"
		sleep 1 # the PMD picks up its rx queues
		FWD_PIDS=$OVSD_PID
		;;
	loopback) ;; # --latency only: no switch, the echo on 127.0.0.1 in the gen namespace
	*) echo "unknown system $1" >&2; return 1 ;;
	esac
}

teardown_sys() {
	case $1 in
	xvs*)
		if [ -n "$XVSD_PID" ]; then
			{
				echo "--- $1 round $2: xvsctl dump-flows / dump-ports / stats"
				if [ -n "$TABLE_FILE" ]; then ctl dump-flows | head -3; else ctl dump-flows; fi
				ctl dump-ports
				ctl stats
			} >>"$RUN/xvs-counters.txt" 2>&1 || true
		fi
		stop_xvsd
		;;
	xdp)
		threaded_napi_off
		stop_pid "$AUX_PID"
		;;
	bridge)
		threaded_napi_off
		[ -z "$AUX_PID" ] || stop_pid "$AUX_PID"
		ethtool -K p0 gro off >/dev/null 2>&1 || true
		ip link set p0 nomaster 2>/dev/null || true
		ip link set p1 nomaster 2>/dev/null || true
		ip link del "$BR" 2>/dev/null || true
		;;
	ovs | ovs-rewrite)
		ovs-appctl -t "$RUN/ovs/ovs-vswitchd.ctl" dpif-netdev/pmd-perf-show >>"$RUN/ovs-counters.txt" 2>&1 || true
		vsctl --if-exists del-port "$OVSBR" p0 -- --if-exists del-port "$OVSBR" p1 >>"$LOG" 2>&1 || true
		wait_for 5 sh -c "! ip -d link show p0 | grep -q prog/xdp" || true
		;;
	esac
	AUX_PID=
}

# run_one SYS ROUND [LABEL]: set SYS up, one window, tear it down.
run_one() {
	local label=${3:-$1}
	if ! setup_sys "$1" >>"$LOG" 2>&1; then
		say "$label round $2: setup failed (see $LOG)"
		echo "$label $2 fail fail fail" >>"$RES"
		return 0
	fi
	run_window "$1" "$2" "$label"
	teardown_sys "$1" "$2" >>"$LOG" 2>&1
}

# run_window SYS ROUND LABEL: one window through SYS (set up), FLOWS
# 5-tuples; appends "LABEL ROUND PPS CPU% OFFERED" to RES.
run_window() {
	local sys=$1 round=$2 label=$3 k0mac
	k0mac=$(ip netns exec "$SINK" cat /sys/class/net/k0/address)
	ip netns exec "$SINK" "$T" count --dev k0 --delay "$WARM" --seconds "$SECS" \
		${FWD_PIDS:+--cpu-pid "$FWD_PIDS"} >"$RUN/count.out" 2>&1 &
	local cpid=$!
	BG_PIDS+=("$cpid")
	local spid=
	if [ -n "$FWD_PIDS" ] && [ "$sys" != xdp ] && [ "$sys" != bridge ]; then
		(
			sleep "$WARM"
			thread_snap "$FWD_PIDS" >"$RUN/threads.a"
			sleep "$SECS"
			thread_snap "$FWD_PIDS" >"$RUN/threads.b"
		) &
		spid=$!
		BG_PIDS+=("$spid")
	fi
	if ! wait_for 5 grep -q counting "$RUN/count.out"; then
		cat "$RUN/count.out" >>"$LOG"
	fi
	local blast_ok=1
	taskset -c "$GEN_CPU" ip netns exec "$GEN" "$T" blast --dev g0 --dst-mac "$k0mac" \
		--src-ip "$GEN_IP" --dst-ip "$SINK_IP" --dst-port 7999 --size "$SIZE" --flows "$FLOWS" \
		--rate "$RATE" --seconds "$((WARM + SECS + 1))" >"$RUN/blast.out" 2>&1 || blast_ok=0
	local count_ok=1
	wait "$cpid" || count_ok=0
	forget_pid "$cpid"
	if [ -n "$spid" ]; then
		wait "$spid" || true
		forget_pid "$spid"
		echo "$label $round $(busiest_thread "$RUN/threads.a" "$RUN/threads.b" "$SECS")" >>"$RUN/threads"
	fi
	{
		echo "--- $label round $round"
		cat "$RUN/blast.out" "$RUN/count.out"
	} >>"$LOG"
	local pps cpu offered
	pps=$(sed -n 's/.* received [0-9]* packets in .*: \([0-9]*\) pps.*/\1/p' "$RUN/count.out")
	offered=$(sed -n 's/.*: \([0-9]*\) pps$/\1/p' "$RUN/blast.out")
	cpu=$(awk '/count: cpu pid/ { s += $(NF) + 0; n++ } END { if (n) printf "%.1f", s; else print "-" }' "$RUN/count.out")
	if [ $blast_ok = 0 ] || [ $count_ok = 0 ] || [ -z "$pps" ]; then
		say "$label round $round: failed: $(tail -1 "$RUN/blast.out") / $(tail -1 "$RUN/count.out")"
		echo "$label $round fail fail fail" >>"$RES"
		return 0
	fi
	echo "$label $round $pps $cpu ${offered:-0}" >>"$RES"
	printf 'bench: round %d %-12s k0 %8.3f Mpps  fwd cpu %5s%%  offered %6.2f Mpps\n' \
		"$round" "$label" "$(echo "$pps" | awk '{ print $1 / 1e6 }')" "$cpu" "$(echo "${offered:-0}" | awk '{ print $1 / 1e6 }')" |
		tee -a "$LOG"
}

# --- many active flows ----------------------------------------------------

gen_table() { # gen_table N FILE: the flows of the 5-tuples blast --flows sends (flowPorts)
	awk -v n="$1" -v src="$GEN_IP" -v dst="$SINK_IP" 'BEGIN {
		for (m = 0; m < n; m++)
			printf "priority=100,udp,in_port=p0,nw_src=%s,nw_dst=%s,tp_src=%d,tp_dst=%d,actions=output:p1\n",
				src, dst, 1024 + m % 64512, 7999 + int(m / 64512)
	}' >"$2"
}

# run_active SYS ROUND: SYS with the table, one window per count of
# --active, as SYS@K; xvs also runs its plain one-flow table, as xvs@plain.
run_active() {
	local sys=$1 round=$2 k
	[ "$sys" != xvs ] || run_one xvs "$round" xvs@plain
	TABLE_FILE=$RUN/table.txt
	if setup_sys "$sys" >>"$LOG" 2>&1; then
		for k in $ACTIVE; do
			FLOWS=$k
			run_window "$sys" "$round" "$sys@$k"
		done
		FLOWS=1
	else
		say "$sys round $round: setup with the $TABLE-flow table failed (see $LOG)"
		for k in $ACTIVE; do echo "$sys@$k $round fail fail fail" >>"$RES"; done
	fi
	teardown_sys "$sys" "$round" >>"$LOG" 2>&1
	TABLE_FILE=
}

active_report() {
	local sys k med lo hi
	echo
	echo "== many active flows: a table of $TABLE exact 5-tuple flows (udp, in_port, nw_src, nw_dst, tp_src,"
	echo "   tp_dst -> output:p1); K of them active (blast --flows K, round robin), ${SIZE}-byte UDP flat out"
	echo "   $ROUNDS rounds x ${SECS}s (after ${WARM}s warm-up), interleaved; k0 Mpps, median (min..max) over rounds"
	local w=10
	for sys in $RUN_SYSTEMS; do [ ${#sys} -lt $w ] || w=$((${#sys} + 1)); done
	printf '%-*s' $w system
	for k in $ACTIVE; do printf ' %22s' "K=$k"; done
	echo
	for sys in xvs@plain $RUN_SYSTEMS; do
		[ "$sys" != xvs@plain ] || [[ " $RUN_SYSTEMS " == *" xvs "* ]] || continue
		printf '%-*s' $w "${sys%@plain}"
		for k in $ACTIVE; do
			if [ "$sys" = xvs@plain ]; then
				[ "$k" = "${ACTIVE%% *}" ] || { printf ' %22s' ""; continue; }
				read -r med lo hi <<<"$(stats xvs@plain 3)"
			else
				read -r med lo hi <<<"$(stats "$sys@$k" 3)"
			fi
			if [ "$med" = - ]; then
				printf ' %22s' "no result"
			else
				printf ' %22s' "$(awk -v m="$med" -v a="$lo" -v b="$hi" 'BEGIN { printf "%.3f (%.2f..%.2f)", m / 1e6, a / 1e6, b / 1e6 }')"
			fi
		done
		[ "$sys" != xvs@plain ] || printf '   (xvs, the plain one-flow table: 1 flow, 1 active)'
		echo
	done
	echo
	echo "per-round ratios, median (min..max):"
	for k in $ACTIVE; do
		echo "  K=$k:"
		for sys in $RUN_SYSTEMS; do
			case $sys in ovs) continue ;; esac
			printf '    %-*s' $w "$sys"
			[ $OVS_OK = 0 ] || printf '  to ovs %-20s' "$(paired "$sys@$k" "ovs@$k")"
			printf '  K/%s %-20s' "${ACTIVE%% *}" "$(paired "$sys@$k" "$sys@${ACTIVE%% *}")"
			[[ " $RUN_SYSTEMS " != *" xvs "* ]] || printf '  to plain xvs %-20s' "$(paired "$sys@$k" xvs@plain)"
			[[ " $RUN_SYSTEMS " != *" xvs-base "* ]] || printf '  to xvs-base %s' "$(paired "$sys@$k" "xvs-base@$k")"
			echo
		done
	done
	echo "to ovs: to OVS with the same table and K; K/${ACTIVE%% *}: to itself with K=${ACTIVE%% *} (the first of --active);"
	echo "to plain xvs: to xvs with the plain one-flow table. xvs: the flows run in the XDP fast path;"
	echo "xvs-user: xvsd --fast-path=off (the pollers' classifier)."
}

# --- pair ------------------------------------------------------------------

# pair_setup: the second chain, ns gen [gr0] <-veth-> [pr0] root [pr1]
# <-veth-> [kr0] ns sink, made like testenv.sh makes the first, with a bare
# XDP redirect pr0 -> pr1.
pair_setup() {
	ip link add pr0 type veth peer name gr0 netns "$GEN" &&
		ip link add pr1 type veth peer name kr0 netns "$SINK" || return 1
	ip link set pr0 up && ip link set pr1 up &&
		ip -n "$GEN" link set gr0 up && ip -n "$SINK" link set kr0 up || return 1
	ip netns exec "$GEN" "$T" offloads-off gr0 && ip netns exec "$SINK" "$T" offloads-off kr0 &&
		ip netns exec "$GEN" "$T" gro gr0 on && ip netns exec "$SINK" "$T" gro kr0 on || return 1
	"$T" xdp-redirect --from pr0 --to pr1 >>"$LOG" 2>&1 &
	PAIR_XDP_PID=$!
	BG_PIDS+=("$PAIR_XDP_PID")
	wait_for 5 has_xdp pr0
}

# pair_one SYS: xvs-traffic pair of SYS (g0 -> k0) against the bare
# redirect (gr0 -> kr0); the output is kept in $RUN/pair-SYS.out.
pair_one() {
	local sys=$1
	if ! setup_sys "$sys" >>"$LOG" 2>&1; then
		say "pair $sys: setup failed (see $LOG)"
		return 0
	fi
	taskset -c "$GEN_CPU" ip netns exec "$GEN" "$T" pair --a g0:k0 --b gr0:kr0 --sink-ns "$SINK" \
		--src-ip "$GEN_IP" --dst-ip "$SINK_IP" --dst-port 7999 --size "$SIZE" --flows "$FLOWS" \
		--seconds "$PAIR" >"$RUN/pair-$sys.out" 2>&1 || say "pair $sys: failed: $(tail -1 "$RUN/pair-$sys.out")"
	{
		echo "--- pair $sys"
		cat "$RUN/pair-$sys.out"
	} >>"$LOG"
	teardown_sys "$sys" pair >>"$LOG" 2>&1
	say "pair $sys: $(grep 'per CPU-second' "$RUN/pair-$sys.out" | sed 's/^pair: //')"
}

pair_bench() {
	if ! pair_setup >>"$LOG" 2>&1; then
		say "pair: setup of the second chain failed (see $LOG)"
		return 0
	fi
	local sys
	for sys in $RUN_SYSTEMS; do
		case $sys in xvs | xvs-rewrite) pair_one "$sys" ;; esac
	done
	stop_pid "$PAIR_XDP_PID"
	forget_pid "$PAIR_XDP_PID"
}

pair_report() {
	[ "$PAIR" != 0 ] || return 0
	echo
	echo "== pair: A = xvs (g0 -> p0 -> p1 -> k0), B = bare XDP redirect (gr0 -> pr0 -> pr1 -> kr0),"
	echo "   alternating 0.5s slices over ${PAIR}s from one sender on CPU $GEN_CPU (xvs-traffic pair)"
	local sys
	for sys in xvs xvs-rewrite; do
		[ -s "$RUN/pair-$sys.out" ] || continue
		echo "$sys:"
		grep '^pair: ' "$RUN/pair-$sys.out" | sed 's/^pair: /  /'
	done
	echo "per CPU-second: each slice's rate over the sender thread's CPU share in it (other tasks preempt"
	echo "it, and nothing forwards meanwhile); its A/B is the ratio of the two paths' per-frame costs."
}

# --- OVS -------------------------------------------------------------------

ovs_prepare() {
	[ $WITH_OVS = 1 ] || return 1
	if ! command -v ovs-vswitchd >/dev/null; then
		say "installing openvswitch-switch"
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch; } >>"$LOG" 2>&1; then
			OVS_WHY="apt-get install openvswitch-switch failed (see $LOG)"
			return 1
		fi
	fi
	# Never leave the distribution's service running: we run our own.
	if [ -d /run/systemd/system ]; then
		systemctl disable --now openvswitch-switch ovs-vswitchd ovsdb-server >>"$LOG" 2>&1 || true
	elif [ -x /usr/share/openvswitch/scripts/ovs-ctl ] && [ -e /run/openvswitch/ovs-vswitchd.pid ]; then
		/usr/share/openvswitch/scripts/ovs-ctl stop >>"$LOG" 2>&1 || true
	fi
	local schema=/usr/share/openvswitch/vswitch.ovsschema
	[ -r $schema ] || { OVS_WHY="no $schema"; return 1; }
	mkdir -p "$RUN/ovs"
	export OVS_RUNDIR=$RUN/ovs OVS_DBDIR=$RUN/ovs OVS_LOGDIR=$RUN/ovs OVS_SYSCONFDIR=$RUN/ovs
	ovsdb-tool create "$RUN/ovs/conf.db" $schema >>"$LOG" 2>&1 || { OVS_WHY="ovsdb-tool create failed"; return 1; }
	ovsdb-server "$RUN/ovs/conf.db" --remote="punix:$RUN/ovs/db.sock" --unixctl="$RUN/ovs/ovsdb-server.ctl" \
		--log-file="$RUN/ovs/ovsdb-server.log" --no-chdir >>"$LOG" 2>&1 &
	OVSDB_PID=$!
	wait_for 10 test -S "$RUN/ovs/db.sock" || { OVS_WHY="ovsdb-server did not start"; return 1; }
	vsctl --no-wait init >>"$LOG" 2>&1
	ovs-vswitchd "unix:$RUN/ovs/db.sock" --unixctl="$RUN/ovs/ovs-vswitchd.ctl" \
		--log-file="$RUN/ovs/ovs-vswitchd.log" --no-chdir >>"$LOG" 2>&1 &
	OVSD_PID=$!
	vsctl set Open_vSwitch . other_config:pmd-cpu-mask=$((1 << FWD_CPU)) >>"$LOG" 2>&1 &&
		vsctl add-br "$OVSBR" -- set bridge "$OVSBR" datapath_type=netdev >>"$LOG" 2>&1 ||
		{ OVS_WHY="ovs-vswitchd did not take the netdev bridge (see $RUN/ovs/ovs-vswitchd.log)"; return 1; }
	# Probe AF_XDP: the Debian build must have it and the kernel must take it.
	if ! vsctl add-port "$OVSBR" p0 -- set interface p0 type=afxdp options:xdp-mode=native >>"$LOG" 2>&1 ||
		! wait_for 10 has_xdp p0; then
		OVS_WHY="type=afxdp ports do not work: $(vsctl get interface p0 error 2>/dev/null || echo '?')"
		return 1
	fi
	vsctl del-port "$OVSBR" p0 >>"$LOG" 2>&1
	wait_for 5 sh -c "! ip -d link show p0 | grep -q prog/xdp" || true
	OVS_WHY=
	return 0
}

# --- idle CPU and flow install ---------------------------------------------

idle_cpu() { # idle_cpu PID SECONDS: CPU% of PID over SECONDS with no traffic
	local a b
	a=$(cputicks "$1" 2>/dev/null) || { echo "failed (pid $1 gone)"; return 0; }
	sleep "$2"
	b=$(cputicks "$1" 2>/dev/null) || { echo "failed (pid $1 gone)"; return 0; }
	awk -v a="$a" -v b="$b" -v s="$2" 'BEGIN { printf "%.1f", (b - a) / s }'
}

gen_flows() { # gen_flows N FILE: N distinct exact-match flows, one mask
	awk -v n="$1" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "priority=100,udp,in_port=p0,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=output:p1\n",
				int(i / 65536) % 256, int(i / 256) % 256, i % 256
	}' >"$2"
}

now_ms() { date +%s%3N; }

install_bench() {
	local n f t0 t1 flows
	INSTALL_ROWS=()
	for n in $SIZES; do
		f=$RUN/flows-$n.txt
		gen_flows "$n" "$f"
	done
	if start_xvsd; then
		XVS_IDLE=$(idle_cpu "$XVSD_PID" 5)
		for n in $SIZES; do
			f=$RUN/flows-$n.txt
			ctl del-flows >>"$LOG" 2>&1
			t0=$(now_ms)
			if ctl add-flows "$f" >>"$LOG" 2>&1; then
				t1=$(now_ms)
				flows=$(ctl stats | sed -n 's/.* \([0-9]*\) flows.*/\1/p' || true)
				INSTALL_ROWS+=("xvs $n $((t1 - t0)) $(rss_kb "$XVSD_PID") ${flows:-?}")
			else
				INSTALL_ROWS+=("xvs $n fail - -")
			fi
		done
		stop_xvsd
	else
		XVS_IDLE=fail
	fi
	[ $OVS_OK = 1 ] || return 0
	vsctl add-port "$OVSBR" p0 -- set interface p0 type=afxdp options:xdp-mode=native \
		-- add-port "$OVSBR" p1 -- set interface p1 type=afxdp options:xdp-mode=native >>"$LOG" 2>&1
	sleep 2
	OVS_IDLE=$(idle_cpu "$OVSD_PID" 5)
	for n in $SIZES; do
		f=$RUN/flows-$n.txt
		ovs-ofctl del-flows "$OVSBR"
		t0=$(now_ms)
		if ovs-ofctl --bundle add-flows "$OVSBR" "$f" >>"$LOG" 2>&1; then
			t1=$(now_ms)
			flows=$(ovs-ofctl dump-aggregate "$OVSBR" | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p' || true)
			INSTALL_ROWS+=("ovs $n $((t1 - t0)) $(rss_kb "$OVSD_PID") ${flows:-?}")
		else
			INSTALL_ROWS+=("ovs $n fail - -")
		fi
	done
	ovs-ofctl del-flows "$OVSBR"
	vsctl del-port "$OVSBR" p0 -- del-port "$OVSBR" p1 >>"$LOG" 2>&1
	wait_for 5 sh -c "! ip -d link show p0 | grep -q prog/xdp" || true
}

# --- latency ---------------------------------------------------------------

cpu_ns() { # cpu_ns PID: on-CPU time of PID's threads in ns (schedstat)
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

now_ns() { date +%s%N; }

# pct C0 C1 T0 T1: CPU% from two cpu_ns and two now_ns readings
pct() { awk -v a="$1" -v b="$2" -v s="$3" -v e="$4" 'BEGIN { if (b >= a && e > s) printf "%.1f", (b - a) / (e - s) * 100; else print "-" }'; }

# poller_counts: "sleeps wakeups" of xvsd's pollers, summed
poller_counts() {
	ctl --json stats 2>/dev/null | tr ',{}[' '\n\n\n\n' |
		awk -F: '$1 ~ /"sleeps"$/ { s += $2 } $1 ~ /"wakeups"$/ { w += $2 } END { print s + 0, w + 0 }'
}

PING_TO=$SINK_IP:$ECHO_PORT
pinger() { # pinger FLAGS...: xvs-traffic ping from the gen namespace to the echo at PING_TO
	"${RT_CMD[@]}" taskset -c "$GEN_CPU" ip netns exec "$GEN" "$T" ping --to "$PING_TO" "$@"
}

# RT_CMD: what runs a measuring program under SCHED_FIFO at priority RT
# (--rt), its threads too; nothing with --rt 0. (A prefix, not a function:
# a program started in the background must be the job $! names.)
RT_CMD=()
[ "$RT" = 0 ] || RT_CMD=(chrt -f "$RT")

# run_latency SYS ROUND: the idle window and one ping run per rate; appends
# "SYS ROUND RATE P50 P99 MAX CPU% IDLE% LOST SLEEPS/s WAKEUPS/s" to RES.
run_latency() {
	local sys=$1 round=$2 rate c0 c1 t0 t1 idle=- cpu n0 n1 sl wk p50 p99 mx lost
	PING_TO=$SINK_IP:$ECHO_PORT
	[ "$sys" != loopback ] || PING_TO=127.0.0.1:$ECHO_PORT
	if ! setup_sys "$sys" >>"$LOG" 2>&1; then
		say "$sys round $round: setup failed (see $LOG)"
		for rate in $RATES; do echo "$sys $round $rate fail" >>"$RES"; done
		teardown_sys "$sys" "$round" >>"$LOG" 2>&1
		return 0
	fi
	if [ -n "$FWD_PIDS" ]; then
		c0=$(cpu_ns "$FWD_PIDS") t0=$(now_ns)
		sleep 3
		c1=$(cpu_ns "$FWD_PIDS") t1=$(now_ns)
		idle=$(pct "$c0" "$c1" "$t0" "$t1")
	fi
	# Warm up (OVS installs its datapath flow on the first packets).
	pinger --rate 500 --count 200 --wait 200ms >>"$LOG" 2>&1 || true
	for rate in $RATES; do
		n0="0 0" n1="0 0" cpu=-
		[ "${sys#xvs}" = "$sys" ] || n0=$(poller_counts)
		[ -z "$FWD_PIDS" ] || c0=$(cpu_ns "$FWD_PIDS")
		t0=$(now_ns)
		if ! pinger --rate "$rate" --count "$REQUESTS" >"$RUN/ping.out" 2>&1; then
			say "$sys round $round at $rate/s: ping failed: $(tail -1 "$RUN/ping.out")"
			echo "$sys $round $rate fail" >>"$RES"
			continue
		fi
		t1=$(now_ns)
		[ -z "$FWD_PIDS" ] || { c1=$(cpu_ns "$FWD_PIDS"); cpu=$(pct "$c0" "$c1" "$t0" "$t1"); }
		[ "${sys#xvs}" = "$sys" ] || n1=$(poller_counts)
		read -r sl wk <<<"$(awk -v a="$n0" -v b="$n1" -v s="$t0" -v e="$t1" 'BEGIN { split(a, x, " "); split(b, y, " ");
			d = (e - s) / 1e9; printf "%.0f %.0f", (y[1] - x[1]) / d, (y[2] - x[2]) / d }')"
		{
			echo "--- $sys round $round at $rate/s"
			cat "$RUN/ping.out"
		} >>"$LOG"
		p50=$(sed -n 's/^ping-result .* p50_us=\([0-9.]*\) .*/\1/p' "$RUN/ping.out")
		p99=$(sed -n 's/^ping-result .* p99_us=\([0-9.]*\) .*/\1/p' "$RUN/ping.out")
		mx=$(sed -n 's/^ping-result .* max_us=\([0-9.]*\) .*/\1/p' "$RUN/ping.out")
		lost=$(sed -n 's/^ping-result .* lost=\([0-9]*\) .*/\1/p' "$RUN/ping.out")
		if [ -z "$p50" ]; then
			echo "$sys $round $rate fail" >>"$RES"
			continue
		fi
		[ "${sys#xvs}" != "$sys" ] || sl=- wk=-
		echo "$sys $round $rate $p50 $p99 $mx $cpu $idle $lost $sl $wk" >>"$RES"
		printf 'bench: round %d %-24s %5d/s  rtt p50 %7.1f p99 %7.1f max %8.1f us  fwd cpu %5s%%  idle %4s%%  lost %s\n' \
			"$round" "$sys" "$rate" "$p50" "$p99" "$mx" "$cpu" "$idle" "$lost" | tee -a "$LOG"
	done
	teardown_sys "$sys" "$round" >>"$LOG" 2>&1
}

# lstats SYS RATE COLUMN: "median min max" of a latency result column
# (4 p50, 5 p99, 6 max, 7 cpu, 8 idle, 9 lost, 10 sleeps/s, 11 wakeups/s)
lstats() {
	awk -v s="$1" -v r="$2" -v c="$3" '$1 == s && $3 == r && $4 != "fail" && $c != "-" { print $c }' "$RES" | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "- - -"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m, v[1], v[NR]
		}'
}

latency_report() {
	local rate sys med lo hi p99 p99lo p99hi mmed mlo mhi cpu idle lost sl wk ref fails
	echo
	echo "== round trips: ping (gen) -> p0 -> SYSTEM -> p1 -> echo (sink) and back, UDP, $REQUESTS requests per rate"
	local sched=
	[ "$RT" = 0 ] || sched=" (SCHED_FIFO $RT)"
	echo "   $ROUNDS rounds, interleaved; ping and echo on CPU $GEN_CPU$sched, forwarding on CPU $FWD_CPU; median (min..max) over rounds"
	printf '%6s %-24s %22s %22s %19s %11s %8s %6s %7s %8s %5s\n' rate system "p50 us" "p99 us" "max us (med, worst)" "vs ovs p50" "fwd CPU%" idle% lost "sleeps/s" wakes/s
	for rate in $RATES; do
		ref=$(lstats ovs "$rate" 4 | cut -d' ' -f1)
		for sys in $RUN_SYSTEMS; do
			fails=$(awk -v s="$sys" -v r="$rate" '$1 == s && $3 == r && $4 == "fail"' "$RES" | wc -l)
			read -r med lo hi <<<"$(lstats "$sys" "$rate" 4)"
			if [ "$med" = - ]; then
				printf '%6s %-24s no result (%s failed runs, see log)\n' "$rate" "$sys" "$fails"
				continue
			fi
			read -r p99 p99lo p99hi <<<"$(lstats "$sys" "$rate" 5)"
			read -r mmed mlo mhi <<<"$(lstats "$sys" "$rate" 6)"
			cpu=$(lstats "$sys" "$rate" 7 | cut -d' ' -f1)
			idle=$(lstats "$sys" "$rate" 8 | cut -d' ' -f1)
			lost=$(lstats "$sys" "$rate" 9 | cut -d' ' -f3)
			sl=$(lstats "$sys" "$rate" 10 | cut -d' ' -f1)
			wk=$(lstats "$sys" "$rate" 11 | cut -d' ' -f1)
			printf '%6s %-24s %22s %22s %19s %11s %8s %6s %7s %8s %5s\n' "$rate" "$sys" \
				"$(printf '%.0f (%.0f..%.0f)' "$med" "$lo" "$hi")" "$(printf '%.0f (%.0f..%.0f)' "$p99" "$p99lo" "$p99hi")" \
				"$(printf '%.0f, %.0f' "$mmed" "$mhi")" \
				"$(awk -v a="$med" -v b="$ref" 'BEGIN { if (b != "-" && b > 0) printf "%.2fx", a / b; else print "-" }')" \
				"$cpu" "$idle" "$lost" "$sl" "$wk"
		done
	done
	echo "rtt: from just before ping's sendto to the kernel's receive timestamp of the reply (ping's own wake-up excluded)."
	echo "fwd CPU%: on-CPU time of the forwarding process's threads (xvsd, ovs-vswitchd) over the ping window; '-': kernel"
	echo "softirq, not separable. idle%: the same over 3 s with ports up and no traffic. lost: worst round."
	echo "sleeps/s, wakes/s: xvs pollers' sleeps in poll(2) and the wake-ups that ended them (timeouts apart), per second."
}

latency_main() {
	"${RT_CMD[@]}" taskset -c "$GEN_CPU" ip netns exec "$SINK" "$T" echo --listen "$SINK_IP:$ECHO_PORT" --for 86400s >"$RUN/echo.out" 2>&1 &
	BG_PIDS+=($!)
	wait_for 5 grep -q serving "$RUN/echo.out" || die "echo did not start: $(cat "$RUN/echo.out")"
	if [[ " $RUN_SYSTEMS " == *" loopback "* ]]; then
		ip -n "$GEN" link set lo up
		"${RT_CMD[@]}" taskset -c "$GEN_CPU" ip netns exec "$GEN" "$T" echo --listen "127.0.0.1:$ECHO_PORT" --for 86400s >"$RUN/echo-lo.out" 2>&1 &
		BG_PIDS+=($!)
		wait_for 5 grep -q serving "$RUN/echo-lo.out" || die "loopback echo did not start: $(cat "$RUN/echo-lo.out")"
	fi
	for round in $(seq "$ROUNDS"); do
		for sys in $RUN_SYSTEMS; do
			run_latency "$sys" "$round"
		done
	done
	latency_report | tee -a "$LOG"
}

# --- report ----------------------------------------------------------------

# stats SYS COLUMN: "median min max" of COLUMN (3 = pps, 4 = cpu, 5 = offered)
stats() {
	awk -v s="$1" -v c="$2" '$1 == s && $c != "fail" && $c != "-" { print $c }' "$RES" | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "- - -"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m, v[1], v[NR]
		}'
}

# paired SYS REF: "median (min..max)" of SYS/REF over the rounds both
# completed. Rounds are interleaved, so the two of one round met the same
# machine: on a noisy one the ratio of a round holds better than the ratio
# of the medians.
paired() {
	awk -v s="$1" -v r="$2" '$3 != "fail" && $1 == s { a[$2] = $3 } $3 != "fail" && $1 == r { b[$2] = $3 }
		END { for (k in a) if ((k in b) && b[k] > 0) print a[k] / b[k] }' "$RES" | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "-"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.2fx (%.2f..%.2f)\n", m, v[1], v[NR]
		}'
}

report() {
	local sys ref med lo hi cmed fails ratio toxdp us omed
	echo
	local offer="flat out"
	[ "$RATE" = 0 ] || offer="at $RATE pps"
	echo "== forwarding p0 -> p1: ${SIZE}-byte UDP, $FLOWS flow(s), offered $offer"
	echo "   $ROUNDS rounds x ${SECS}s (after ${WARM}s warm-up), interleaved; generator (blast) on CPU $GEN_CPU,"
	echo "   forwarding on CPU $FWD_CPU (kernel paths: p0 NAPI $KNAPI); bridge rx: $BRIDGE_RX"
	local xdpmed
	xdpmed=$(stats xdp 3 | cut -d' ' -f1)
	printf '%-17s %10s %19s %7s %7s %9s %10s %9s %6s\n' system "k0 Mpps" "(min..max)" ratio "to xdp" "fwd CPU%" "CPU ns/pkt" "offered" "fails"
	for sys in $SYSTEMS; do
		read -r med lo hi <<<"$(stats "$sys" 3)"
		cmed=$(stats "$sys" 4 | cut -d' ' -f1)
		omed=$(stats "$sys" 5 | cut -d' ' -f1)
		fails=$(awk -v s="$sys" '$1 == s && $3 == "fail"' "$RES" | wc -l)
		if [ "$med" = - ]; then
			if [ "${sys#ovs}" != "$sys" ] && [ $OVS_OK = 0 ]; then
				printf '%-17s not available (%s)\n' "$sys" "$OVS_WHY"
			else
				printf '%-17s no result (%s failed runs, see log)\n' "$sys" "$fails"
			fi
			continue
		fi
		ref=ovs
		case $sys in *-rewrite) ref=ovs-rewrite ;; esac
		if [ $OVS_OK = 0 ]; then
			ref=xvs-user
			case $sys in *-rewrite) ref=xvs-user-rewrite ;; esac
		fi
		ratio=$(awk -v a="$med" -v b="$(stats "$ref" 3 | cut -d' ' -f1)" 'BEGIN { if (b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
		toxdp=$(awk -v a="$med" -v b="$xdpmed" 'BEGIN { if (b != "-" && b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
		us=$(awk -v c="$cmed" -v p="$med" 'BEGIN { if (c != "-" && p > 0) printf "%.0f", c / 100 / p * 1e9; else print "-" }')
		printf '%-17s %10.3f %19s %7s %7s %9s %10s %9.2f %6s\n' "$sys" "$(awk -v v="$med" 'BEGIN { print v / 1e6 }')" \
			"($(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.3f..%.3f", a / 1e6, b / 1e6 }'))" \
			"$ratio" "$toxdp" "$cmed" "$us" "$(awk -v v="$omed" 'BEGIN { print v / 1e6 }')" "$fails"
	done
	echo "ratio: to ovs (rewrite rows: to ovs-rewrite)$([ $OVS_OK = 1 ] || echo "; OVS absent, so to xvs-user / xvs-user-rewrite"); to xdp: to the bare XDP redirect."
	echo "xvs, xvs-rewrite: the flow runs in the XDP fast path; xvs-user*: xvsd --fast-path=off."
	echo
	echo "== per-round ratios (median (min..max) of each round's ratio)"
	local ovsref
	for sys in $RUN_SYSTEMS; do
		case $sys in xdp | ovs | ovs-rewrite) continue ;; esac
		ovsref=ovs
		case $sys in *-rewrite) ovsref=ovs-rewrite ;; esac
		printf '%-17s to xdp %-20s to %-12s %s\n' "$sys" "$(paired "$sys" xdp)" "$ovsref" "$([ $OVS_OK = 1 ] && paired "$sys" "$ovsref" || echo -)"
	done
	echo "fwd CPU%: utime+stime of the forwarding process over the window (xvsd; ovs-vswitchd; p0's NAPI"
	echo "thread with --kernel-napi threaded; '-' = kernel softirq on the generator's CPU, not separable;"
	echo "for xvs in the fast path, xvsd's own CPU: the forwarding is in that softirq)."
	echo "CPU ns/pkt = fwd CPU / k0 rate. offered: median Mpps blast put out of g0 (veth drops what p0 cannot take)."
	echo
	echo "== idle CPU over 5s, ports up, no traffic"
	echo "xvsd: ${XVS_IDLE:-?}%"
	if [ $OVS_OK = 1 ]; then echo "ovs-vswitchd (PMD busy-polls): ${OVS_IDLE:-?}%"; fi
	echo
	echo "== flow install: N exact-match flows (one mask) in one request (xvsctl add-flows; ovs-ofctl --bundle add-flows)"
	printf '%-6s %8s %10s %10s %10s\n' switch flows "time ms" "flows/s" "RSS MiB"
	local row s n ms rss cnt
	for row in "${INSTALL_ROWS[@]}"; do
		read -r s n ms rss cnt <<<"$row"
		if [ "$ms" = fail ]; then
			printf '%-6s %8s %10s\n' "$s" "$n" failed
			continue
		fi
		[ "$cnt" = "$n" ] || s="$s(table has $cnt)"
		printf '%-6s %8s %10s %10s %10s\n' "$s" "$n" "$ms" "$(awk -v n="$n" -v m="$ms" 'BEGIN { printf "%.0f", n / (m > 0 ? m : 1) * 1000 }')" \
			"$(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')"
	done
}

# xvs_diag: the busiest thread of each userspace switch, and the counters
# PERF.md says separate switches.
xvs_diag() {
	if [ -s "$RUN/threads" ]; then
		echo
		echo "== the forwarding thread over the window (median of rounds; from /proc/PID/task/TID/schedstat, status)"
		printf '%-12s %-16s %8s %14s %12s %14s\n' system thread "on-cpu%" "runq-wait%" "vol ctxsw/s" "invol ctxsw/s"
		local sys
		for sys in $RUN_SYSTEMS; do
			awk -v s="$sys" '$1 == s && NF == 7' "$RUN/threads" | sort -k4 -g | awk '{ row[NR] = $0 } END {
				if (NR) { split(row[int((NR + 1) / 2)], f, " "); printf "%-12s %-16s %8s %14s %12s %14s\n", f[1], f[3], f[4], f[5], f[6], f[7] } }'
		done
		echo "on-cpu + runq-wait < 100%: the thread blocked (in a syscall or on a lock) or slept."
	fi
	[ -s "$RUN/xvs-counters.txt" ] || return 0
	echo
	echo "== xvs counters (the last round of each xvs system; all rounds in the log)"
	local last
	for sys in xvs xvs-rewrite xvs-user xvs-user-rewrite; do
		last=$(grep -n "^--- $sys round" "$RUN/xvs-counters.txt" | tail -1 | cut -d: -f1 || true)
		[ -n "$last" ] || continue
		tail -n +"$last" "$RUN/xvs-counters.txt" | awk 'NR > 1 && /^---/ { exit } { print }' |
			grep -E '^---|datapath=|port +[0-9]|xdp rx|xsk |drop=|QUEUE|^ +[0-9]+ +[0-9]' | sed 's/^/  /'
	done
}

# --- main ------------------------------------------------------------------

say "work dir $RUN; systems: $SYSTEMS; $ROUNDS rounds x ${SECS}s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$TE" setup >>"$LOG" 2>&1 || die "testenv setup failed (see $LOG)"
if [[ " $SYSTEMS " == *" ovs"* ]]; then
	if ovs_prepare; then
		OVS_OK=1
		say "ovs: $(ovs-vswitchd --version | head -1), afxdp ports work"
	else
		say "ovs: not available ($OVS_WHY)"
	fi
fi
RUN_SYSTEMS=
for sys in $SYSTEMS; do
	case $sys in ovs*) [ $OVS_OK = 1 ] || continue ;; esac
	RUN_SYSTEMS="$RUN_SYSTEMS $sys"
done
if [ -n "$ACTIVE" ]; then
	gen_table "$TABLE" "$RUN/table.txt"
	for round in $(seq "$ROUNDS"); do
		for sys in $RUN_SYSTEMS; do
			run_active "$sys" "$round"
		done
	done
	{
		active_report
		xvs_diag
	} | tee -a "$LOG"
elif [ $LATENCY = 1 ]; then
	latency_main
else
	for round in $(seq "$ROUNDS"); do
		for sys in $RUN_SYSTEMS; do
			run_one "$sys" "$round"
		done
	done
	if [ "$PAIR" != 0 ]; then
		say "pair, ${PAIR}s each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
		pair_bench
	fi
	say "idle CPU and flow install; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	install_bench
	{
		report
		pair_report
		xvs_diag
	} | tee -a "$LOG"
fi
say "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
cp "$LOG" "/tmp/xvs-bench-last.log" 2>/dev/null || true
echo
echo "bench: full log in /tmp/xvs-bench-last.log"
