# demolib.sh: what demo.sh and sdwan-demo.sh share. Source it with NAME (for
# messages), BIN (the binaries) and RUN (a scratch directory) set; it sets
# XVS_SERVER to a socket in RUN.
# shellcheck shell=bash

export XVS_SERVER=unix:$RUN/xvsd.sock
XVSD_PID=

die() { echo "$NAME: $*" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { echo "\$ xvsctl $*"; "$BIN/xvsctl" "$@"; }

# demo_check: root, and the binaries built.
demo_check() {
	[ "$(id -u)" = 0 ] || die "must run as root"
	local b
	for b in xvsd xvsctl xvs-traffic; do
		[ -x "$BIN/$b" ] || die "$BIN/$b missing: run make build"
	done
}

# start_xvsd: xvsd with its pollers on the second CPU (if there is one; the
# first is for traffic), state and log in RUN; returns once it answers.
start_xvsd() {
	local cpus=$(( $(nproc) > 1 ? 1 : 0 ))
	"$BIN/xvsd" --listen "$XVS_SERVER" --state "$RUN/state.json" --cpus "$cpus" >"$RUN/xvsd.log" 2>&1 &
	XVSD_PID=$!
	for _ in $(seq 100); do
		"$BIN/xvsctl" show >/dev/null 2>&1 && return 0
		kill -0 "$XVSD_PID" 2>/dev/null || { cat "$RUN/xvsd.log"; die "xvsd died"; }
		sleep 0.1
	done
	die "xvsd did not answer in 10 s"
}

# stop_xvsd: SIGTERM (xvsd detaches its XDP programs) and its exit status.
stop_xvsd() {
	if [ -n "$XVSD_PID" ] && kill -0 "$XVSD_PID" 2>/dev/null; then
		kill -TERM "$XVSD_PID"
		wait "$XVSD_PID"
		echo "$NAME: xvsd exited with $?"
	fi
	XVSD_PID=
}
