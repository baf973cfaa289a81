#!/usr/bin/env bash
# sdwan-demo.sh: xvs as an SD-WAN edge node, end to end, on sdwan.sh's
# topology (a LAN, two uplinks to two providers, a remote site).
#
# It programs a three-table policy with two groups (sdwan-policy.txt) in
# one transaction, then shows: the kernel still serving the edge's own
# addresses; a voice packet traced through the pipeline; bulk TCP shared
# 3:1 over the uplinks; an attack dropped in XDP; and voice (UDP, marked EF
# by the switch) failing over when uplink 1's provider end goes down and
# back when it returns, with the gap measured, group counters and events.
#
# It fails on damaged or mis-marked datagrams, on voice loss anywhere but in
# at most two gaps (the failover and the failback) or in a gap over
# SDWAN_MAX_GAP (default 50ms), on an attack datagram reaching the LAN, on
# bulk TCP not using both uplinks, or if the kernel's services stop
# answering. Run as root after `make build` (make sdwan-demo does both).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../bin}
SD=$HERE/sdwan.sh
export XVS_TRAFFIC=$BIN/xvs-traffic
RATE=${SDWAN_VOICE_RATE:-1000}    # voice datagrams per second
SECONDS_UP=${SDWAN_PHASE:-3}      # seconds before the failure, during it, after it
MAX_GAP=${SDWAN_MAX_GAP:-50ms}
RUN=$(mktemp -d /tmp/xvs-sdwan.XXXXXX)
MON_PID=
NAME=sdwan-demo
# shellcheck source=testenv/demolib.sh
. "$HERE/demolib.sh"
demo_check

cleanup() {
	set +e
	[ -z "$MON_PID" ] || kill "$MON_PID" 2>/dev/null
	stop_xvsd
	"$SD" teardown
	rm -rf "$RUN"
}
trap cleanup EXIT

fail() { die "FAILED: $*"; }
in_ns() { local ns=$1; shift; "$SD" exec "$ns" -- "$@"; }
rx() { in_ns remote cat "/sys/class/net/$1/statistics/rx_packets"; }

step "topology"
"$SD" setup

step "xvsd (pollers pinned to CPU 1, state in $RUN)"
start_xvsd
"$BIN/xvsctl" monitor >"$RUN/events.txt" 2>&1 &
MON_PID=$!

step "ports: the LAN and two uplinks"
ctl add-port edge-lan
ctl add-port edge-wan1
ctl add-port edge-wan2
ctl show

step "policy: three tables and two groups, one transaction"
subst=()
for d in edge-lan edge-wan1 edge-wan2 l0 pe1 pe2; do subst+=(-e "s/@$d@/$("$SD" mac "$d")/g"); done
sed "${subst[@]}" "$HERE/sdwan-policy.txt" >"$RUN/policy.txt"
grep -v '^#' "$RUN/policy.txt" | grep -v '^$'
ctl add-bundle "$RUN/policy.txt"
ctl dump-groups
ctl dump-flows

step "the kernel keeps the edge's own traffic: a service on 10.10.0.1, a BFD-like check over uplink 1"
"$BIN/xvs-traffic" tcp-echo --listen 10.10.0.1:2222 --for 2s >"$RUN/svc.out" 2>&1 &
SVC=$!
in_ns isp1 "$BIN/xvs-traffic" tcp-echo --listen 172.16.1.1:3784 --for 2s >"$RUN/bfd.out" 2>&1 &
BFD=$!
sleep 0.3
in_ns lan "$BIN/xvs-traffic" tcp-check --to 10.10.0.1:2222 || fail "the edge's own service did not answer the LAN"
"$BIN/xvs-traffic" tcp-check --to 172.16.1.1:3784 || fail "the edge's kernel could not talk to provider 1"
wait "$SVC" "$BFD"

LANMAC=$("$SD" mac edge-lan)
step "trace: a voice packet from the LAN"
ctl trace "in_port=edge-lan,udp,dl_dst=$LANMAC,nw_src=10.10.0.10,nw_dst=10.20.0.1,tp_src=16500,tp_dst=20000"

step "bulk TCP: 48 connections from the LAN to the remote site, shared 3:1"
in_ns remote "$BIN/xvs-traffic" tcp-echo --listen 10.20.0.1:9000 --for 30s >"$RUN/bulk-echo.out" 2>&1 &
BULK_ECHO=$!
sleep 0.3
x1=$(rx x1) x2=$(rx x2)
in_ns lan "$BIN/xvs-traffic" tcp-bulk --to 10.20.0.1:9000 --conns 48 --bytes 65536 || fail "bulk TCP"
kill "$BULK_ECHO" 2>/dev/null || true
wait "$BULK_ECHO" 2>/dev/null || true
x1=$(( $(rx x1) - x1 )) x2=$(( $(rx x2) - x2 ))
ctl dump-group-stats group_id=2
echo "remote site: $x1 packets arrived over provider 1, $x2 over provider 2"
[ "$x1" -gt 0 ] && [ "$x2" -gt 0 ] || fail "bulk TCP did not use both uplinks"

step "attack: 5000 datagrams from the WAN to the LAN host's port 6666, dropped in XDP"
in_ns lan "$BIN/xvs-traffic" sink --listen 10.10.0.10:6666 --for 2s >"$RUN/attack.out" 2>&1 &
ATTACK_SINK=$!
sleep 0.2
in_ns remote "$BIN/xvs-traffic" send --to 10.10.0.10:6666 --count 5000 --rate 20000
wait "$ATTACK_SINK" || true
head -1 "$RUN/attack.out"
grep -q '^received 0 datagrams' "$RUN/attack.out" || fail "attack datagrams reached the LAN"
"$BIN/xvsctl" dump-ports edge-wan1 | grep xdp

COUNT=$((RATE * SECONDS_UP * 3))
step "voice: $COUNT datagrams at $RATE/s, LAN to remote, marked EF by the switch; uplink 1 fails after ${SECONDS_UP}s and returns after $((2 * SECONDS_UP))s"
in_ns remote "$BIN/xvs-traffic" sink --listen 10.20.0.1:20000 --count "$COUNT" --tos 184 \
	--max-gaps 2 --max-gap "$MAX_GAP" --for $((SECONDS_UP * 3 + 5))s >"$RUN/voice.out" 2>&1 &
VOICE_SINK=$!
sleep 0.3
in_ns lan "$BIN/xvs-traffic" send --to 10.20.0.1:20000 --count "$COUNT" --size 160 --rate "$RATE" >"$RUN/voice-send.out" &
VOICE_SEND=$!
sleep "$SECONDS_UP"
echo "$(date +%T.%3N) uplink 1 down (provider 1's end)"
"$SD" uplink 1 down
sleep 0.2
ctl show
ctl trace "in_port=edge-lan,udp,dl_dst=$LANMAC,nw_src=10.10.0.10,nw_dst=10.20.0.1,tp_src=16500,tp_dst=20000" | tail -6
sleep "$SECONDS_UP"
echo "$(date +%T.%3N) uplink 1 up"
"$SD" uplink 1 up
wait "$VOICE_SEND"
cat "$RUN/voice-send.out"
voice_ok=0
wait "$VOICE_SINK" || voice_ok=$?
cat "$RUN/voice.out"

step "group counters and events"
ctl dump-group-stats
sleep 0.2
kill "$MON_PID" 2>/dev/null || true
wait "$MON_PID" 2>/dev/null || true
MON_PID=
grep -E 'link|liveness|group_' "$RUN/events.txt" || true

step "counters"
ctl dump-tables
ctl dump-ports
ctl stats

grep -q ' x2=' "$RUN/voice.out" || fail "voice never moved to uplink 2"
grep -q ' x1=' "$RUN/voice.out" || fail "voice never used uplink 1"
grep -q 'group_failover' "$RUN/events.txt" || fail "no group_failover event"
[ "$voice_ok" = 0 ] || fail "voice: $(tail -1 "$RUN/voice.out")"
echo
echo "sdwan-demo: voice: $(grep '^missing' "$RUN/voice.out")"
echo "sdwan-demo: ok"
