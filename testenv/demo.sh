#!/usr/bin/env bash
# demo.sh: the main job, end to end, on the testenv.sh topology.
#
#   gen (10.100.0.1) --g0|p0--[ xvsd ]--p1|k0-- sink (10.100.0.2)
#
# It starts xvsd, adds p0 and p1 as ports, programs flows with xvsctl, pushes
# UDP through the switch (the classic rewrite: port 7999 -> 7998, run by the
# XDP fast path: those packets never reach userspace), sends some "attack"
# traffic that a drop flow stops in XDP, sends UDP through a two-table
# pipeline that only userspace runs, shows that the host's own address on p0
# still answers (kernel path), prints the counters (dump-flows says where
# each flow ran: datapath=xdp or datapath=user(REASON)) and tears everything
# down. testenv.sh turns on GRO on g0 and k0, which p0 and p1 need to take
# frames XDP redirects to them. Run as root after `make build` (make demo
# does both).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../bin}
TE=$HERE/testenv.sh
export XVS_TRAFFIC=$BIN/xvs-traffic
COUNT=${DEMO_COUNT:-200000}
RATE=${DEMO_RATE:-50000}
RUN=$(mktemp -d /tmp/xvs-demo.XXXXXX)
NAME=demo
# shellcheck source=testenv/demolib.sh
. "$HERE/demolib.sh"
demo_check

cleanup() {
	set +e
	stop_xvsd
	"$TE" teardown
	rm -rf "$RUN"
}
trap cleanup EXIT

step "topology"
"$TE" setup

step "xvsd (pollers pinned to CPU 1, state in $RUN)"
start_xvsd

step "ports"
ctl add-port p0
ctl add-port p1
ctl show

step "flows"
cat >"$RUN/flows.txt" <<'FLOWS'
# gen -> sink: the classic rewrite, UDP 7999 arrives on 7998. XDP can do
# it all, so it runs in the XDP fast path (datapath=xdp)
priority=100,udp,in_port=p0,tp_dst=7999,actions=mod_tp_dst:7998,output:p1
# drop the "attack" early, in XDP: it never reaches userspace
priority=200,udp,tp_dst=6666,actions=drop
# a two-table pipeline runs in userspace: datapath=user(goto_table) and
# user(later_table)
priority=100,udp,in_port=p0,tp_dst=7000,actions=goto_table:1
table=1,priority=10,udp,actions=mod_tp_dst:7998,output:p1
# everything else from the sink side goes back to gen
priority=10,in_port=p1,actions=output:p0
FLOWS
cat "$RUN/flows.txt"
ctl add-flows "$RUN/flows.txt"
ctl dump-flows

# rx_polled: packets the pollers took from p0; xdp_forwarded: packets the
# XDP program forwarded itself from p0.
rx_polled() { "$BIN/xvsctl" dump-ports p0 | sed -n 's/.* rx pkts=\([0-9]*\),.*/\1/p' | head -1; }
xdp_forwarded() { "$BIN/xvsctl" dump-ports p0 | grep -o ' forward=[0-9]*' | head -1 | cut -d= -f2; }

step "traffic: $COUNT datagrams at $RATE pps gen -> 10.100.0.2:7999, rewritten to 7998 in XDP"
taskset -c 0 "$TE" sink --listen 10.100.0.2:7998 --expect "$COUNT" --for 20s >"$RUN/sink.out" 2>&1 &
SINK_PID=$!
sleep 0.3
taskset -c 0 "$TE" send --to 10.100.0.2:7999 --count "$COUNT" --size 22 --rate "$RATE"
wait "$SINK_PID" || true
cat "$RUN/sink.out"

step "attack: 5000 datagrams to port 6666, dropped in XDP"
"$TE" send --to 10.100.0.2:6666 --count 5000 --size 22

step "pipeline: 5000 datagrams to 10.100.0.2:7000, through table 1 in userspace, arriving on 7998"
polled0=$(rx_polled)
taskset -c 0 "$TE" sink --listen 10.100.0.2:7998 --expect 5000 --for 10s >"$RUN/sink2.out" 2>&1 &
SINK_PID=$!
sleep 0.3
"$TE" send --to 10.100.0.2:7000 --count 5000 --size 22 --rate 20000
wait "$SINK_PID" || true
cat "$RUN/sink2.out"
polled=$(( $(rx_polled) - polled0 ))

step "kernel path: TCP to the host's own address on p0 (no flow wants it)"
"$BIN/xvs-traffic" tcp-echo --listen 10.100.0.254:8080 --for 5s >"$RUN/echo.out" 2>&1 &
ECHO_PID=$!
sleep 0.2
"$TE" exec gen -- "$BIN/xvs-traffic" tcp-check --to 10.100.0.254:8080
wait "$ECHO_PID" || true

step "counters"
ctl dump-flows
ctl dump-ports
ctl stats

# Every payload must be intact. Loss is shown with the counters above that
# explain it (xsk fill_ring_empty: the poller was kept off its CPU); more
# than 1% means something is wrong.
got=$(sed -n 's/^received \([0-9]*\) datagrams, \([0-9]*\) damaged.*/\1 \2/p' "$RUN/sink.out")
read -r received damaged <<<"${got:-0 0}"
got2=$(sed -n 's/^received \([0-9]*\) datagrams, \([0-9]*\) damaged.*/\1 \2/p' "$RUN/sink2.out")
read -r received2 damaged2 <<<"${got2:-0 0}"
forwarded=$(xdp_forwarded)
echo
echo "demo: where the flows ran:"
"$BIN/xvsctl" dump-flows | grep -o 'datapath=[^ ]*, priority=[^ ]*' | sed 's/^/  /'
echo "demo: $received of $COUNT datagrams arrived through the XDP fast path, $damaged damaged;"
echo "      the XDP program forwarded ${forwarded:-?} frames from p0 itself"
echo "demo: $received2 of 5000 datagrams arrived through the userspace pipeline, $damaged2 damaged;"
echo "      the pollers took $polled frames from p0 meanwhile"
if [ "$damaged" != 0 ] || [ $((received * 100)) -lt $((COUNT * 99)) ] ||
	[ "$damaged2" != 0 ] || [ $((received2 * 100)) -lt $((5000 * 99)) ]; then
	echo "demo: FAILED (damaged datagrams, or more than 1% lost)" >&2
	exit 1
fi
if ! "$BIN/xvsctl" dump-flows | grep -q 'datapath=xdp, priority=100,udp,in_port=p0,tp_dst=7999' ||
	[ "${forwarded:-0}" -lt "$received" ] || [ "$polled" -lt 5000 ]; then
	echo "demo: FAILED (the rewrite did not run in XDP, or the pipeline not in userspace)" >&2
	exit 1
fi
echo "demo: ok"
