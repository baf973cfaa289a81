#!/bin/sh
# gen.sh rebuilds the Open vSwitch corpus of the flowtable round-trip tests
# (TestOVSDumpCorpus) and checks xvs's output against Open vSwitch. It needs
# ovs-vswitchd, ovsdb-server and ovs-ofctl (Debian: openvswitch-switch),
# runs a private switch (dummy datapath, its own database and sockets in a
# temporary directory, never the system service) and stops it again.
#
#   ./gen.sh dump    add flows.txt and group 1 to the switch, write what
#                    dump-flows prints: dump-of10.txt, dump-of13.txt; and
#                    what parse-flow makes of ovs-tests.flows:
#                    ovs-tests.parsed
#   ./gen.sh check   for each entry of dump.golden (an OVS line, xvs's
#                    canonical form of it and xvs's dump-flows line of it,
#                    written by go test ./flowtable -run TestOVSDumpCorpus
#                    -update), check that ovs-ofctl reads both of xvs's
#                    forms as the same flow as the OVS line, and record the
#                    result in dump.golden
set -eu
cd "$(dirname "$0")"
D=$(mktemp -d /tmp/xvs-ovs.XXXXXX)
export OVS_RUNDIR=$D OVS_LOGDIR=$D OVS_DBDIR=$D OVS_SYSCONFDIR=$D
stop() {
	for p in "$D"/ovs-vswitchd.pid "$D"/ovsdb-server.pid; do
		[ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
	done
	rm -rf "$D"
}
trap stop EXIT

case "${1:-}" in
dump)
	ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server --remote="punix:$D/db.sock" --pidfile --detach --log-file "$D/conf.db"
	VS="ovs-vsctl --db=unix:$D/db.sock"
	$VS --no-wait init
	ovs-vswitchd "unix:$D/db.sock" --enable-dummy --pidfile --detach --log-file 2>/dev/null
	$VS add-br br0 -- set bridge br0 datapath_type=dummy fail-mode=secure
	for i in 1 2 3 4; do
		$VS add-port br0 "p$i" -- set interface "p$i" type=dummy "ofport_request=$i"
	done
	ovs-ofctl -O OpenFlow13 add-group br0 group_id=1,type=all,bucket=output:1,bucket=output:2
	grep -v '^#' flows.txt | ovs-ofctl -O OpenFlow13 add-flows br0 -
	# Sorted by table and priority, so a re-run gives the same files.
	ovs-ofctl dump-flows br0 --rsort | sed 's/duration=[0-9.]*s/duration=1.234s/; s/idle_age=[0-9]*/idle_age=1/; s/hard_age=[0-9]*/hard_age=1/' >dump-of10.txt
	ovs-ofctl -O OpenFlow13 dump-flows br0 --rsort | sed 's/duration=[0-9.]*s/duration=1.234s/' >dump-of13.txt
	# What ovs-ofctl makes of the lines of OVS's own tests.
	grep -v '^#' ovs-tests.flows | while IFS= read -r f; do
		ovs-ofctl -O OpenFlow13 parse-flow "$f" | tail -1 | sed 's/.*: ADD //'
	done >ovs-tests.parsed
	wc -l dump-of10.txt dump-of13.txt ovs-tests.parsed
	;;
check)
	n=0
	bad=0
	ver=$(ovs-ofctl --version | head -1)
	out=$(mktemp)
	while IFS= read -r line; do
		case "$line" in
		"ovs: "*) ovs=${line#ovs: } ;;
		"xvs: "* | "dump: "*)
			xvs=${line#xvs: }
			xvs=${xvs#dump: }
			n=$((n + 1))
			# The flow as OVS reads it. Two spellings are the same flow
			# for xvs's purpose: load of the whole ECN field is
			# set_field to it (ECN values are the same in hex), and
			# dec_ttl's controller ids, which xvs drops (it has no
			# controller; see README, Deviations).
			a=$(ovs-ofctl -O OpenFlow13 parse-flow "$ovs" 2>&1 | tail -1 | sed -E 's/.*ADD //; s/load:0x([0-3])->NXM_NX_IP_ECN\[\]/set_field:\1->nw_ecn/g; s/dec_ttl\([0-9,]*\)/dec_ttl/g')
			b=$(ovs-ofctl -O OpenFlow13 parse-flow "$xvs" 2>&1 | tail -1 | sed 's/.*ADD //')
			if [ "$a" != "$b" ]; then
				echo "differ: $ovs" >&2
				echo "  ovs reads it as:      $a" >&2
				echo "  and xvs's form $xvs as: $b" >&2
				bad=$((bad + 1))
			fi
			;;
		esac
	done <dump.golden
	echo "$n lines of xvs, $bad read differently"
	grep -v '^# checked:' dump.golden >"$out"
	{ echo "# checked: $ver reads xvs's form of $((n - bad)) of $n lines as the same flow (gen.sh check)"; cat "$out"; } >dump.golden
	rm -f "$out"
	[ "$bad" = 0 ]
	;;
*)
	echo "usage: $0 dump|check" >&2
	exit 2
	;;
esac
