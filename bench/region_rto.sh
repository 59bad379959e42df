#!/usr/bin/env bash
# The region drill's RTO: runs scripts/demo (sandbox up, heartbeat, `inject region-outage`,
# the region-failover drill, sandbox down) --repeat times for a commit and prints, per run,
# the RTO (from the injected incident to run.end), the drill's own share (drbook's run.start
# to run.end) and how long the two waits on the critical path took. The runbooks, Lua
# library and demo come from a snapshot of the commit (git archive REV); drbook is built from
# it (Release, bench/lib.sh) unless DRBOOK=/path/to/drbook is given.
#
#   bench/region_rto.sh [--repeat N] [--rev REV]
#   DRBOOK=build/drbook bench/region_rto.sh --rev HEAD --repeat 3
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
repeat=3
rev=HEAD
while [ $# -gt 0 ]; do
	case $1 in
	--repeat) repeat=$2; shift 2 ;;
	--rev) rev=$2; shift 2 ;;
	*) echo "usage: $0 [--repeat N] [--rev REV]" >&2; exit 2 ;;
	esac
done
short=$(git -C "$ROOT" rev-parse --short=12 "$rev")
work=$(mktemp -d /tmp/drbook-rto.XXXXXX)
trap 'rm -rf "$work"' EXIT
git -C "$ROOT" archive "$short" | tar -x -C "$work"
if [ -z "${DRBOOK:-}" ]; then
	BUILD_DIR=$ROOT/build-bench/rto-$short
	cmake -S "$work" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 ||
		{ cat "$work/cmake.log" >&2; exit 1; }
	cmake --build "$BUILD_DIR" --target drbook -j2 >"$work/build.log" 2>&1 ||
		{ tail -30 "$work/build.log" >&2; exit 1; }
	DRBOOK=$BUILD_DIR/drbook
fi
DRBOOK=$(cd "$(dirname "$DRBOOK")" && pwd)/$(basename "$DRBOOK")
echo "commit $short, drbook $DRBOOK, $repeat run(s); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %8s %8s %14s %12s\n' run rto_s run_s wait-promoted wait-steady
for i in $(seq 1 "$repeat"); do
	out=$work/demo-$i.out
	if ! (cd "$work" && DRBOOK=$DRBOOK scripts/demo >"$out" 2>&1); then
		tail -30 "$out" >&2
		echo "bench: the demo failed (run $i)" >&2
		exit 1
	fi
	# the timeline of drbook report: "HH:MM:SS.mmm +  OFFSETs  text", offsets from the incident
	python3 - "$out" "$i" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
off = {}
for m in re.finditer(r"^\S+ \+\s*([0-9.]+)s  (.*)$", text, re.M):
    t, what = float(m.group(1)), m.group(2)
    if what.startswith("run region-failover"):
        off["start"] = t
    elif what.startswith("run succeeded"):
        off["end"] = t
    else:
        w = re.match(r"ok (wait-promoted|wait-steady)\s+(\S+)", what)
        if w:
            off[w.group(1)] = w.group(2)
print("%-4s %8.2f %8.2f %14s %12s" % (sys.argv[2], off["end"], off["end"] - off["start"],
                                      off.get("wait-promoted", "-"), off.get("wait-steady", "-")))
EOF
done
