#!/usr/bin/env bash
# Benchmark for issue 3 point 7: a for_each over aws.ecs.update_service keeps its calls in
# flight at once. Runs bench/aws_parallel.yaml against bench/slow_ecs.py (every answer after a
# fixed delay) with max_parallel 1, 10 and 50, and prints wall time, requests and concurrency.
#
# usage: bench/aws_parallel.sh [--delay-ms 200] [--count 50] [--repeat 3] [--parallel "1 10 50"]
# env:   BUILD_DIR (default <repo>/build-bench), BENCH_WORKTREE=1 (build the checkout, not HEAD:
#        see bench/lib.sh), DRBOOK (a drbook binary to use instead of building one)
# Not part of ctest: performance is measured here, not asserted in timed tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
DELAY_MS=200
COUNT=50
REPEAT=3
PARALLEL="1 10 50"

while [ $# -gt 0 ]; do
	case $1 in
	--delay-ms) DELAY_MS=$2; shift 2 ;;
	--count) COUNT=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--parallel) PARALLEL=$2; shift 2 ;;
	-h | --help) sed -n '2,8p' "$0"; exit 0 ;;
	*) echo "aws_parallel.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

for tool in python3 cmake; do
	command -v "$tool" >/dev/null || { echo "aws_parallel.sh: $tool is required" >&2; exit 1; }
done

if [ -z "${DRBOOK:-}" ]; then
	bench_build drbook
	DRBOOK=$OBJ_DIR/drbook
	BENCH_REV="$BENCH_REV, Release"
else
	BENCH_REV="given binary"
fi
[ -x "$DRBOOK" ] || { echo "aws_parallel.sh: no drbook binary at $DRBOOK" >&2; exit 1; }

WORK=$(mktemp -d /tmp/drbook-bench-aws.XXXXXX)
SERVER_PID=
RUN_PID=
cleanup() {
	if [ -n "$RUN_PID" ]; then # interrupted during a run: drbook goes first
		kill "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
	fi
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server stops itself well after the longest possible series (every run sequential, twice
# over), so a killed benchmark leaves nothing behind for long.
runs=$(($(echo "$PARALLEL" | wc -w) * REPEAT))
server_timeout=$((runs * COUNT * DELAY_MS * 2 / 1000 + 120))
python3 "$ROOT/bench/slow_ecs.py" --delay-ms "$DELAY_MS" --timeout "$server_timeout" \
	>"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do
	[ -s "$WORK/server.out" ] && break
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.05
done
PORT=$(head -n 1 "$WORK/server.out" || true)
if ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
	echo "aws_parallel.sh: slow_ecs.py did not start:" >&2
	cat "$WORK/server.err" >&2
	exit 1
fi

stats() { # GET /__stats?reset=1 -> "requests ok max_concurrency"
	python3 - "$PORT" <<'EOF'
import json, sys, urllib.request
s = json.load(urllib.request.urlopen("http://127.0.0.1:%s/__stats?reset=1" % sys.argv[1], timeout=10))
print(s["requests"], s["ok"], s["max_concurrency"])
EOF
}

log_figures() { # audit log -> "calls calls_ok step_ms width lat_min lat_med lat_max"
	python3 - "$1" <<'EOF'
import json, os, statistics, sys
calls, ok, step_ms, width, lat = 0, 0, -1, -1, []
lines = open(sys.argv[1]) if os.path.exists(sys.argv[1]) else []  # no log: zeros, run fails
for line in lines:
    r = json.loads(line)
    d = r["data"]
    if r["event"] == "call":
        calls += 1
        ok += d.get("status") == 200
        lat.append(d["latency_ms"])
    elif r["event"] == "step.start" and r["step"] == "scale":
        width = d["max_parallel"]
    elif r["event"] == "step.end" and r["step"] == "scale":
        step_ms = d["duration_ms"]
lat = lat or [0]
print(calls, ok, step_ms, width, min(lat), int(statistics.median(lat)), max(lat))
EOF
}

: >"$WORK/empty"
stats >/dev/null # start from zero

echo "drbook: $DRBOOK ($BENCH_REV)"
echo "endpoint: http://127.0.0.1:$PORT (slow_ecs.py, ${DELAY_MS} ms per answer, no signature check)"
echo "calls per run: $COUNT; sequential lower bound: $((COUNT * DELAY_MS)) ms"
echo
printf '%-12s %-4s %8s %8s %9s %9s %8s %16s\n' max_parallel run wall_ms step_ms requests max_conc threads \
	'call ms min/med/max'
summary=
failed=0
for mp in $PARALLEL; do
	rb=$WORK/aws_parallel-$mp.yaml
	sed -E "s/^(    max_parallel:) [0-9]+$/\1 $mp/" "$ROOT/bench/aws_parallel.yaml" >"$rb"
	grep -q "^    max_parallel: $mp\$" "$rb" || { echo "aws_parallel.sh: could not set max_parallel" >&2; exit 1; }
	walls=
	group_failed=0
	for i in $(seq "$REPEAT"); do
		audit=$WORK/run-$mp-$i.jsonl
		t0=$(date +%s%N)
		rc=0
		env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_DEFAULT_REGION \
			AWS_CONFIG_FILE="$WORK/empty" AWS_SHARED_CREDENTIALS_FILE="$WORK/empty" \
			AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=eu-west-1 \
			AWS_ACCESS_KEY_ID=AKIDBENCHEXAMPLE AWS_SECRET_ACCESS_KEY=bench-not-a-secret \
			"$DRBOOK" run "$rb" -p count="$COUNT" --quiet --audit "$audit" \
			--runs-dir "$WORK/runs" >"$WORK/out" 2>&1 &
		# in the background and waited for, so that a signal reaches the trap at once
		RUN_PID=$!
		wait "$RUN_PID" || rc=$?
		RUN_PID=
		t1=$(date +%s%N)
		wall=$(((t1 - t0) / 1000000))
		read -r requests ok maxc < <(stats)
		read -r calls calls_ok step_ms width lmin lmed lmax < <(log_figures "$audit")
		printf '%-12s %-4s %8s %8s %9s %9s %8s %16s\n' "$mp" "$i" "$wall" "$step_ms" \
			"$requests" "$maxc" "$width" "$lmin/$lmed/$lmax"
		if [ "$rc" -ne 0 ] || [ "$requests" -ne "$COUNT" ] || [ "$ok" -ne "$COUNT" ] ||
			[ "$calls" -ne "$COUNT" ] || [ "$calls_ok" -ne "$COUNT" ]; then
			echo "  run failed: exit $rc, $ok/$requests answered ok, $calls_ok/$calls calls logged ok" >&2
			cat "$WORK/out" >&2
			failed=1
			group_failed=1
		fi
		walls="$walls $wall"
	done
	med=$(echo $walls | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	summary="$summary$(printf 'max_parallel %-3s median wall %6s ms, %5.1fx faster than %s x %s ms = %s ms' \
		"$mp" "$med" "$(echo "$COUNT $DELAY_MS $med" | awk '{print $1*$2/$3}')" \
		"$COUNT" "$DELAY_MS" "$((COUNT * DELAY_MS))")"
	[ "$group_failed" = 0 ] || summary="$summary  (FAILED: see the errors above)"
	summary="$summary"$'\n'
done
echo
printf '%s' "$summary"
exit $failed
