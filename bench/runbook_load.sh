#!/usr/bin/env bash
# Runbook loading: how long `drbook validate` takes (YAML parse, every validation rule, every Lua
# expression compiled) for a large valid runbook from bench/gen_runbook.py, next to the small
# runbooks/examples/hello.yaml, which gives the process start-up cost to subtract.
#
# usage: bench/runbook_load.sh [--steps 3000] [--runs 20] [--instructions]
# --instructions also counts the instructions of one validation of the large runbook with
# valgrind's callgrind: unlike seconds, that count does not move with the machine's load.
# env:   BUILD_DIR (default <repo>/build-bench), BENCH_WORKTREE=1 (see bench/lib.sh).
# Uses hyperfine when installed (apt-get install hyperfine), else a plain timing loop.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
STEPS=3000
RUNS=20
INSTR=0

while [ $# -gt 0 ]; do
	case $1 in
	--steps) STEPS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--instructions) INSTR=1; shift ;;
	-h | --help) sed -n '2,9p' "$0"; exit 0 ;;
	*) echo "runbook_load.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

bench_build drbook
DRBOOK=$OBJ_DIR/drbook
WORK=$(mktemp -d /tmp/drbook-bench-load.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

BIG=$WORK/large-$STEPS.yaml
SMALL=$SRC_DIR/runbooks/examples/hello.yaml
python3 "$ROOT/bench/gen_runbook.py" --steps "$STEPS" >"$BIG"
# Both must be valid, or the benchmark would time an early error exit.
for f in "$SMALL" "$BIG"; do
	if ! "$DRBOOK" validate "$f" >"$WORK/out" 2>&1; then
		echo "runbook_load.sh: $f is not valid:" >&2
		head -n 20 "$WORK/out" >&2
		exit 1
	fi
done

echo "built: $BENCH_REV, Release"
echo "large runbook: $STEPS steps, $(wc -c <"$BIG") bytes, $(wc -l <"$BIG") lines (cap: 1 MiB)"
if [ -x /usr/bin/time ]; then
	echo "peak RSS validating it: $(/usr/bin/time -f %MKB "$DRBOOK" validate "$BIG" 2>&1 >/dev/null)"
fi
echo

if command -v hyperfine >/dev/null; then
	hyperfine -N --warmup 3 --runs "$RUNS" \
		-n "validate hello.yaml" "$DRBOOK validate $SMALL" \
		-n "validate large-$STEPS.yaml" "$DRBOOK validate $BIG"
else
	echo "(hyperfine not installed: $RUNS runs each in a loop, mean wall time)"
	for f in "$SMALL" "$BIG"; do
		t0=$(date +%s%N)
		for _ in $(seq "$RUNS"); do "$DRBOOK" validate "$f"; done
		t1=$(date +%s%N)
		echo "validate $(basename "$f"): $(((t1 - t0) / RUNS / 1000)) us per run"
	done
fi

if [ "$INSTR" = 1 ]; then
	command -v valgrind >/dev/null || { echo "runbook_load.sh: --instructions needs valgrind" >&2; exit 1; }
	echo
	valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
		"$DRBOOK" validate "$BIG" 2>"$WORK/valgrind.err" || { cat "$WORK/valgrind.err" >&2; exit 1; }
	echo "instructions, validate large-$STEPS.yaml: $(sed -n 's/^==[0-9]*== Collected : //p' "$WORK/valgrind.err")"
	# where they go: the loader's own functions and the Lua state set-up, inclusive
	callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null |
		grep -E ':(drb_runbook_load|drb_yaml_parse|parse_steps|drb_runbook_check_expr|drb_runbook_check_chunk|luaL_newstate|luaL_loadbufferx) ' |
		sed -E 's/ +\?\?\?:/  /; s/ \[.*//'
fi
