#!/usr/bin/env bash
# bench-queues.sh: what handing frames between pollers costs.
#
#   ns gen [g0] <-veth, 2 queues-> [p0] root --xvsd-- root [p1] <-veth-> [k0] ns sink
#
# xvs-traffic blast offers 64-byte UDP frames out of g0 from CPU 1, so they
# arrive on p0's RX queue 1 (veth picks CPU % queues) and poller 1 takes
# them. Flow in_port=p0,actions=output:p1. Two cases:
#   same     p1 has 2 active queues: poller 1 sends on p1's queue 1 itself
#   handoff  p1 has 1 active queue (ethtool -L p1 rx 1 tx 1): poller 1
#            copies every frame into a frame poller 0 lent it and hands it
#            over; poller 0 sends it on p1's queue 0
# xvsd runs with --cpus CPUS: by default 0,1 (poller 0 on CPU 0, poller 1 on
# CPU 1 with the generator and p0's NAPI); --cpus 0 puts both pollers on
# CPU 0. Rounds interleave the cases (same handoff same ...); the table gives
# the median and spread of what k0 counted, and xvsd's CPU.
#
# Usage: bench-queues.sh [--rounds R] [--seconds S] [--size BYTES] [--cpus LIST] [--keep]
# Run as root after make build, under flock /tmp/xvs-topo.lock (it uses
# testenv.sh's fixed names p0 and p1).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../bin}
T=$BIN/xvs-traffic
export XVS_TE_PREFIX=xvsbq
export XVS_TRAFFIC=$T
TE=$HERE/testenv.sh
GEN=$XVS_TE_PREFIX-gen
SINK=$XVS_TE_PREFIX-sink
GEN_IP=10.100.0.1
SINK_IP=10.100.0.2
ROUNDS=5
SECS=5
WARM=1
SIZE=64
CPUS=0,1
KEEP=0

die() { echo "bench-queues: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--cpus) CPUS=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown flag $1" ;;
	esac
done
[ "$(id -u)" = 0 ] || die "must run as root"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
command -v ethtool >/dev/null || die "needs ethtool (apt-get install ethtool)"
for b in xvsd xvsctl xvs-traffic; do
	[ -x "$BIN/$b" ] || die "$BIN/$b missing: run make build"
done
for dev in p0 p1; do
	! ip link show "$dev" >/dev/null 2>&1 || die "$dev already exists (another testenv run?); not touching it"
done

RUN=$(mktemp -d /tmp/xvs-bench-queues.XXXXXX)
LOG=$RUN/log
RES=$RUN/results
: >"$RES"
export XVS_SERVER=unix:$RUN/xvsd.sock
XVSD_PID=

stop_xvsd() {
	[ -n "$XVSD_PID" ] || return 0
	kill -TERM "$XVSD_PID" 2>/dev/null || true
	wait "$XVSD_PID" 2>/dev/null || true
	XVSD_PID=
}
cleanup() {
	local rc=$?
	set +e
	stop_xvsd
	"$TE" teardown >/dev/null 2>&1
	if [ $rc -ne 0 ]; then
		echo "bench-queues: failed; log kept in $RUN" >&2
	elif [ "$KEEP" = 1 ]; then
		echo "bench-queues: log kept in $RUN"
	else
		rm -rf "$RUN"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$BIN/xvsctl" "$@"; }
cputicks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

"$TE" setup --queues 2 >>"$LOG"
K0MAC=$(ip netns exec "$SINK" cat /sys/class/net/k0/address)

# run_case CASE ROUND: appends "CASE ROUND PPS CPU% HANDOFFS" to RES.
run_case() {
	local q=2
	[ "$1" = same ] || q=1
	# No XDP program is attached between rounds: any order of changes works.
	ip netns exec "$SINK" ethtool -L k0 rx "$q" tx "$q"
	ethtool -L p1 rx "$q" tx "$q"
	rm -f "$RUN/state.json"
	"$BIN/xvsd" --listen "$XVS_SERVER" --state "$RUN/state.json" --cpus "$CPUS" >>"$RUN/xvsd.log" 2>&1 &
	XVSD_PID=$!
	for _ in $(seq 100); do ctl show >/dev/null 2>&1 && break; sleep 0.1; done
	ctl add-port p0 >>"$LOG" && ctl add-port p1 >>"$LOG" && ctl add-flow "in_port=p0,actions=output:p1" >>"$LOG"
	ip netns exec "$SINK" "$T" count --dev k0 --delay "$WARM" --seconds "$SECS" >"$RUN/count.out" 2>&1 &
	local cpid=$!
	for _ in $(seq 50); do grep -q counting "$RUN/count.out" 2>/dev/null && break; sleep 0.1; done
	(sleep "$WARM"; cputicks "$XVSD_PID" >"$RUN/cpu.a"; sleep "$SECS"; cputicks "$XVSD_PID" >"$RUN/cpu.b") &
	local spid=$!
	taskset -c 1 ip netns exec "$GEN" "$T" blast --dev g0 --dst-mac "$K0MAC" --src-ip "$GEN_IP" \
		--dst-ip "$SINK_IP" --dst-port 7999 --size "$SIZE" --seconds "$((WARM + SECS + 1))" >"$RUN/blast.out" 2>&1
	wait "$cpid"
	wait "$spid"
	local handoffs drops
	handoffs=$(ctl stats --json | awk -F'[:,]' '/"handoffs"/ { s += $2 } END { print s + 0 }')
	# The drop counters that are not zero, and the kernel's socket drops.
	drops=$(ctl dump-ports | grep -o '[a-z_]*=[1-9][0-9]*' | grep -v '^\(pkts\|bytes\|drop\|rx\|redirect\|pass_nomatch\|tx_ring_empty\)=' | sort | tr '\n' ' ')
	{ echo "--- $1 round $2"; ctl show; ctl dump-ports; ctl stats; cat "$RUN/blast.out" "$RUN/count.out"; } >>"$LOG" 2>&1
	stop_xvsd
	local pps cpu
	pps=$(sed -n 's/.* received [0-9]* packets in .*: \([0-9]*\) pps.*/\1/p' "$RUN/count.out")
	cpu=$(awk -v a="$(cat "$RUN/cpu.a")" -v b="$(cat "$RUN/cpu.b")" -v s="$SECS" 'BEGIN { printf "%.0f", (b - a) / s }')
	[ -n "$pps" ] || die "$1 round $2: k0 counted nothing (see $LOG)"
	echo "$1 $2 $pps $cpu $handoffs" >>"$RES"
	printf 'bench-queues: round %d %-8s k0 %7.3f Mpps  xvsd cpu %4s%%  handed over %s  %s\n' \
		"$2" "$1" "$(awk -v p="$pps" 'BEGIN { print p / 1e6 }')" "$cpu" "$handoffs" "$drops"
}

for r in $(seq "$ROUNDS"); do
	for c in same handoff; do
		run_case "$c" "$r"
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
printf '%-8s %12s %18s %10s\n' case "median Mpps" "min-max Mpps" "xvsd cpu%"
for c in same handoff; do
	pps=$(awk -v c="$c" '$1 == c { print $3 }' "$RES")
	printf '%-8s %12.3f %8.3f-%-9.3f %10s\n' "$c" \
		"$(echo "$pps" | median | awk '{ print $1 / 1e6 }')" \
		"$(echo "$pps" | sort -n | head -1 | awk '{ print $1 / 1e6 }')" \
		"$(echo "$pps" | sort -n | tail -1 | awk '{ print $1 / 1e6 }')" \
		"$(awk -v c="$c" '$1 == c { print $4 }' "$RES" | median)"
done
