#!/usr/bin/env bash
# scale.sh: a large flow table and the memory it costs, xvs side by side
# with Open vSwitch (issue 13), in one run, interleaved over the rounds.
#
# Each round, for each system, a fresh daemon on the bench topology
# (testenv.sh, ports p0 and p1), then:
#   idle     RSS with the 2 ports and no flows (after 2 s)
#   install  N exact-match flows in one request, timed end to end
#            (xvsctl add-flows: parsed, in the tables and the kernel's
#            steering maps, persisted; ovs-ofctl --bundle add-flows)
#   replace  the same N flows again (xvsctl replace-flows; ovs-ofctl
#            --bundle replace-flows); the peak RSS during it (VmHWM, reset
#            through /proc/PID/clear_refs just before)
#   dump     dump-flows of the N flows to a file (xvsctl dump-flows;
#            ovs-ofctl dump-flows), and the lines it printed
#   rss      RSS with the N flows, /proc/PID/smaps_rollup Anonymous, and for
#            xvs the memory of its BPF maps (memlock in /proc/PID/fdinfo)
#   one      last, one flow added to the N and deleted again, each its
#            own request, 5 times (xvsctl add-flow, del-flows --strict;
#            ovs-ofctl add-flow, --strict del-flows): the median of each
# The flows: priority=100,udp,in_port=p0,nw_dst=10.a.b.c,tp_dst=7999,
#            actions=mod_tp_dst:7998,output:p1 (one mask; i-th flow
#            nw_dst=10.(i>>16).(i>>8&255).(i&255)).
#
# Usage: scale.sh [--flows N] [--rounds R] [--systems "xvs ovs"]
#                 [--xvs NAME=BINDIR]...   (more xvs builds, e.g. main's,
#                                          each a system of its own)
#                 [--keep]                 (keep the work dir: the daemons'
#                                          logs, the flows, the results)
# Run as root after make build, under flock /tmp/xvs-topo.lock (it builds
# the fixed-name topology). OVS needs openvswitch-switch installed; its
# daemons run on a private database in a temporary directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../bin}
export XVS_TE_PREFIX=xvsscale
export XVS_TRAFFIC=$BIN/xvs-traffic
TE=$HERE/testenv.sh
OVSBR=xvsscale-ovs

N=160000
ROUNDS=3
SYSTEMS="xvs ovs"
KEEP=0
declare -A XVSBIN=([xvs]=$BIN)

die() { echo "scale: $*" >&2; exit 1; }
usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--flows) N=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--systems) SYSTEMS=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--xvs)
		[[ $2 == *=* ]] || die "--xvs takes NAME=BINDIR"
		XVSBIN[${2%%=*}]=${2#*=}
		[[ " $SYSTEMS " == *" ${2%%=*} "* ]] || SYSTEMS="${2%%=*} $SYSTEMS"
		shift 2
		;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown flag $1" ;;
	esac
done
[[ $N =~ ^[1-9][0-9]*$ && $N -le 16777216 ]] || die "--flows takes 1..16777216"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive integer"
[ "$(id -u)" = 0 ] || die "must run as root"
for s in $SYSTEMS; do
	if [ "$s" = ovs ]; then
		command -v ovs-vswitchd >/dev/null || die "ovs-vswitchd missing (apt-get install openvswitch-switch), or drop ovs from --systems"
		continue
	fi
	[ -n "${XVSBIN[$s]:-}" ] || die "unknown system $s (xvs, ovs, or a NAME given with --xvs)"
	for b in xvsd xvsctl; do
		[ -x "${XVSBIN[$s]}/$b" ] || die "${XVSBIN[$s]}/$b missing: run make build"
	done
done
for dev in p0 p1; do
	! ip link show "$dev" >/dev/null 2>&1 || die "$dev already exists (another testenv run?); not touching it"
done

RUN=$(mktemp -d /tmp/xvs-scale.XXXXXX)
LOG=$RUN/scale.log
RES=$RUN/results
: >"$RES"
PID=
OVSDB_PID=

stop_pid() { # TERM, wait up to 10s, then KILL; only our own children
	local pid=$1
	[[ $pid =~ ^[1-9][0-9]*$ ]] || return 0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	stop_pid "$PID"
	stop_pid "$OVSDB_PID"
	"$TE" teardown >/dev/null 2>&1
	if [ $rc -ne 0 ]; then
		echo "scale: failed (exit $rc); log kept in $RUN" >&2
	elif [ $KEEP = 1 ]; then
		echo "scale: work dir kept: $RUN" >&2
	else
		rm -rf "$RUN"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
anon_kb() { awk '$1 == "Anonymous:" { print $2 }' "/proc/$1/smaps_rollup"; }
# bpf_kb PID: the memlock of the BPF maps PID holds (each map once).
bpf_kb() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^map_id:/ { id = $2 } /^memlock:/ { m = $2 } END { if (id != "") print id, m }' "$f" 2>/dev/null
	done | sort -u -k1,1 | awk '{ s += $2 } END { printf "%d", s / 1024 }'
}
wait_for() { # wait_for SECONDS CMD...
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# timed NAME CMD...: runs CMD, sets T_MS (or fails the round).
timed() {
	local t0 rc=0
	t0=$(now_ms)
	"$@" >>"$LOG" 2>&1 || rc=$?
	T_MS=$(($(now_ms) - t0))
	return $rc
}

gen_flows() {
	awk -v n="$1" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "priority=100,udp,in_port=p0,nw_dst=10.%d.%d.%d,tp_dst=7999,actions=mod_tp_dst:7998,output:p1\n",
				int(i / 65536) % 256, int(i / 256) % 256, i % 256
	}' >"$2"
}

# --- one system ------------------------------------------------------------

start_sys() { # sets PID; makes the 2 ports
	case $1 in
	ovs)
		local schema=/usr/share/openvswitch/vswitch.ovsschema o=$RUN/ovs
		rm -rf "$o" && mkdir -p "$o"
		export OVS_RUNDIR=$o OVS_DBDIR=$o OVS_LOGDIR=$o OVS_SYSCONFDIR=$o
		ovsdb-tool create "$o/conf.db" $schema >>"$LOG" 2>&1
		ovsdb-server "$o/conf.db" --remote="punix:$o/db.sock" --unixctl="$o/ovsdb-server.ctl" \
			--log-file="$o/ovsdb-server.log" --no-chdir >>"$LOG" 2>&1 &
		OVSDB_PID=$!
		wait_for 10 test -S "$o/db.sock" || return 1
		vsctl --no-wait init >>"$LOG" 2>&1
		ovs-vswitchd "unix:$o/db.sock" --unixctl="$o/ovs-vswitchd.ctl" \
			--log-file="$o/ovs-vswitchd.log" --no-chdir >>"$LOG" 2>&1 &
		PID=$!
		vsctl set Open_vSwitch . other_config:pmd-cpu-mask=2 &&
			vsctl add-br "$OVSBR" -- set bridge "$OVSBR" datapath_type=netdev &&
			vsctl add-port "$OVSBR" p0 -- set interface p0 type=afxdp options:xdp-mode=native \
				-- add-port "$OVSBR" p1 -- set interface p1 type=afxdp options:xdp-mode=native >>"$LOG" 2>&1 || return 1
		wait_for 10 sh -c "ip -d link show p0 | grep -q prog/xdp && ip -d link show p1 | grep -q prog/xdp" || return 1
		ovs-ofctl del-flows "$OVSBR"
		;;
	*)
		local b=${XVSBIN[$1]}
		rm -f "$RUN/state.json"
		"$b/xvsd" --listen "unix:$RUN/xvsd.sock" --state "$RUN/state.json" --cpus 1 >>"$RUN/xvsd-$1.log" 2>&1 &
		PID=$!
		wait_for 10 xctl "$1" show || return 1
		xctl "$1" add-port p0 >>"$LOG" && xctl "$1" add-port p1 >>"$LOG"
		;;
	esac
}

vsctl() { ovs-vsctl --db="unix:$RUN/ovs/db.sock" --timeout=30 "$@"; }
xctl() { local s=$1; shift; XVS_SERVER=unix:$RUN/xvsd.sock "${XVSBIN[$s]}/xvsctl" --timeout 600s "$@"; }

stop_sys() {
	if [ "$1" = ovs ] && [ -n "$PID" ]; then
		vsctl --if-exists del-br "$OVSBR" >>"$LOG" 2>&1 || true
	fi
	stop_pid "$PID"
	PID=
	if [ "$1" = ovs ]; then stop_pid "$OVSDB_PID"; OVSDB_PID=; fi
}

flow_count() {
	case $1 in
	ovs) ovs-ofctl dump-aggregate "$OVSBR" | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p' ;;
	*) xctl "$1" stats | sed -n 's/.* \([0-9]*\) flows.*/\1/p' ;;
	esac
}

# one SYS: K single-flow adds and deletes into the table; sets ONE_ADD
# and ONE_DEL, the median ms of each (or fails the round).
K=5
one() {
	local s=$1 i fl adds=() dels=()
	for i in $(seq "$K"); do
		fl="priority=200,udp,in_port=p0,nw_dst=10.200.0.$i,tp_dst=7999"
		case $s in
		ovs) timed ovs-ofctl add-flow "$OVSBR" "$fl,actions=output:p1" ;;
		*) timed xctl "$s" add-flow "$fl,actions=output:p1" ;;
		esac || return 1
		adds+=("$T_MS")
		case $s in
		ovs) timed ovs-ofctl --strict del-flows "$OVSBR" "$fl" ;;
		*) timed xctl "$s" del-flows --strict "$fl" ;;
		esac || return 1
		dels+=("$T_MS")
	done
	ONE_ADD=$(printf '%s\n' "${adds[@]}" | sort -g | sed -n "$(((K + 1) / 2))p")
	ONE_DEL=$(printf '%s\n' "${dels[@]}" | sort -g | sed -n "$(((K + 1) / 2))p")
}

# round SYS R: appends "SYS R idleKB installMS rssKB anonKB bpfKB replaceMS
# peakKB dumpMS lines oneAddMS oneDelMS" to RES.
round() {
	local s=$1 r=$2 f=$RUN/flows.txt idle inst rss anon bpf repl peak dump lines cnt
	if ! start_sys "$s" >>"$LOG" 2>&1; then
		echo "scale: $s round $r: start failed (see $LOG)"
		stop_sys "$s"
		return 0
	fi
	sleep 2
	idle=$(kb "$PID" VmRSS)
	case $s in
	ovs) timed ovs-ofctl --bundle add-flows "$OVSBR" "$f" ;;
	*) timed xctl "$s" add-flows "$f" ;;
	esac || { echo "scale: $s round $r: install failed"; stop_sys "$s"; return 0; }
	inst=$T_MS
	cnt=$(flow_count "$s")
	[ "$cnt" = "$N" ] || { echo "scale: $s round $r: $cnt flows installed, want $N"; stop_sys "$s"; return 0; }
	sleep 1
	echo 5 >"/proc/$PID/clear_refs"
	case $s in
	ovs) timed ovs-ofctl --bundle replace-flows "$OVSBR" "$f" ;;
	*) timed xctl "$s" replace-flows "$f" ;;
	esac || { echo "scale: $s round $r: replace failed"; stop_sys "$s"; return 0; }
	repl=$T_MS
	peak=$(kb "$PID" VmHWM)
	case $s in
	ovs) timed sh -c "ovs-ofctl dump-flows $OVSBR >$RUN/dump.txt" ;;
	*) timed sh -c "XVS_SERVER=unix:$RUN/xvsd.sock ${XVSBIN[$s]}/xvsctl --timeout 600s dump-flows >$RUN/dump.txt" ;;
	esac || { echo "scale: $s round $r: dump failed"; stop_sys "$s"; return 0; }
	dump=$T_MS
	lines=$(grep -c 'nw_dst=' "$RUN/dump.txt" || true)
	sleep 1
	rss=$(kb "$PID" VmRSS)
	anon=$(anon_kb "$PID")
	bpf=$(bpf_kb "$PID")
	# Last: the garbage of single changes would count in the figures above.
	one "$s" || { echo "scale: $s round $r: a single-flow add or delete failed"; stop_sys "$s"; return 0; }
	echo "$s $r $idle $inst $rss $anon $bpf $repl $peak $dump $lines $ONE_ADD $ONE_DEL" | tee -a "$RES" >>"$LOG"
	printf 'scale: round %d %-6s idle %4d MiB, install %5d ms, one add %4d ms, one delete %4d ms, replace %5d ms, dump %5d ms (%d lines), RSS %4d MiB (anon %d, bpf maps %d), peak during replace %4d MiB\n' \
		"$r" "$s" $((idle / 1024)) "$inst" "$ONE_ADD" "$ONE_DEL" "$repl" "$dump" "$lines" $((rss / 1024)) $((anon / 1024)) $((bpf / 1024)) $((peak / 1024))
	stop_sys "$s"
}

# med SYS COL: "median min max" of a column of RES.
med() {
	awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$RES" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		print m, v[1], v[NR] }'
}

report() {
	echo
	echo "== $N flows, $ROUNDS rounds interleaved: median (min..max); times in ms, memory in MiB"
	printf '%-8s %16s %12s %12s %16s %16s %14s %14s %14s %10s\n' system install "one add" "one delete" replace dump "RSS 2 ports" "RSS N flows" "peak replace" "bpf maps"
	local s c m lo hi out
	for s in $SYSTEMS; do
		out=$(printf '%-8s' "$s")
		for c in 4 12 13 8 10; do
			[ "$c" = 12 ] || [ "$c" = 13 ] && { read -r m lo hi <<<"$(med "$s" $c)"; out+=$(printf ' %12s' "$m ($lo..$hi)"); continue; }
			read -r m lo hi <<<"$(med "$s" $c)"
			out+=$(printf ' %16s' "$m ($lo..$hi)")
		done
		for c in 3 5 9 7; do
			read -r m lo hi <<<"$(med "$s" $c)"
			[ "$m" = - ] && { out+=$(printf ' %14s' -); continue; }
			out+=$(awk -v m="$m" -v a="$lo" -v b="$hi" 'BEGIN { printf " %14s", sprintf("%.0f (%.0f..%.0f)", m / 1024, a / 1024, b / 1024) }')
		done
		echo "$out"
	done
	if [[ " $SYSTEMS " == *" ovs "* ]]; then
		echo
		echo "== ratios to ovs (of the medians)"
		local o
		for s in $SYSTEMS; do
			[ "$s" = ovs ] && continue
			out=$(printf '%-8s' "$s")
			for c in 4:install 12:one-add 13:one-delete 8:replace 10:dump 3:rss-idle 5:rss 9:peak; do
				o=$(med ovs "${c%%:*}" | cut -d' ' -f1)
				m=$(med "$s" "${c%%:*}" | cut -d' ' -f1)
				out+=$(awk -v a="$m" -v b="$o" -v n="${c#*:}" 'BEGIN { if (a != "-" && b + 0 > 0) printf "  %s %.2fx", n, a / b; else printf "  %s -", n }')
			done
			echo "$out"
		done
	fi
	echo "peak replace: VmHWM during the replace; bpf maps: memlock of xvsd's BPF maps (not in its RSS)."
}

echo "scale: work dir $RUN; systems: $SYSTEMS; $N flows; $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
gen_flows "$N" "$RUN/flows.txt"
"$TE" setup >>"$LOG" 2>&1 || die "testenv setup failed (see $LOG)"
for r in $(seq "$ROUNDS"); do
	for s in $SYSTEMS; do
		round "$s" "$r"
	done
done
report | tee -a "$LOG"
cp "$LOG" /tmp/xvs-scale-last.log 2>/dev/null || true
