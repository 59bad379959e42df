#!/usr/bin/env bash
# Audit log throughput: records/s through drb_audit_append (write + fsync per record), without
# and with an HMAC key, from 1 and 8 threads. Compiles bench/audit_bench.c against the static
# libraries of build-bench, checks every log it writes with `drbook audit verify`.
#
# usage: bench/audit.sh [--records 2000] [--repeat 3] [--dir DIR]
# env:   BUILD_DIR (default <repo>/build-bench), BENCH_WORKTREE=1 (see bench/lib.sh).
# DIR (default BUILD_DIR/bench-audit) is where the logs go: fsync cost is the disk's, so say
# which disk with the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
RECORDS=2000
REPEAT=3
DIR=

while [ $# -gt 0 ]; do
	case $1 in
	--records) RECORDS=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	-h | --help) sed -n '2,9p' "$0"; exit 0 ;;
	*) echo "audit.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

for tool in cmake cc pkg-config; do
	command -v "$tool" >/dev/null || { echo "audit.sh: $tool is required" >&2; exit 1; }
done
bench_build drb_audit drb_core drbook
BIN=$BUILD_DIR/audit_bench
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -std=c11 -O2 -Wall -Wextra -Werror -Wshadow -Wformat=2 -D_POSIX_C_SOURCE=200809L \
	-I"$SRC_DIR/include" $(pkg-config --cflags jansson) "$ROOT/bench/audit_bench.c" -o "$BIN" \
	"$OBJ_DIR/libdrb_audit.a" "$OBJ_DIR/libdrb_core.a" \
	$(pkg-config --libs jansson libcrypto) -lpthread -lm

DIR=${DIR:-$BUILD_DIR/bench-audit}
mkdir -p "$DIR"
WORK=$(mktemp -d "$DIR/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The same key audit_bench.c uses (31 characters and its NUL: 32 bytes).
printf 'drbook-bench-hmac-key-32-bytes!\0' >"$WORK/key"

echo "built: $BENCH_REV, Release"
echo "logs in: $DIR ($(df -T "$DIR" | awk 'NR == 2 {print $2 " on " $1}'))"
echo "records per run: $RECORDS (one write + one fsync each)"
echo
printf '%-7s %-7s %-4s %9s %11s %10s\n' mode threads run seconds records/s bytes
failed=0
for mode in nohmac hmac; do
	for threads in 1 8; do
		for i in $(seq "$REPEAT"); do
			log=$WORK/$mode-$threads-$i.jsonl
			read -r n t m secs rate bytes < <("$BIN" "$log" "$RECORDS" "$threads" "$mode")
			printf '%-7s %-7s %-4s %9s %11s %10s\n' "$m" "$t" "$i" "$secs" "$rate" "$bytes"
			[ "$n" = "$RECORDS" ] || failed=1
			keyarg=()
			[ "$mode" = hmac ] && keyarg=(--key-file "$WORK/key")
			if ! "$OBJ_DIR/drbook" audit verify "$log" "${keyarg[@]}" >"$WORK/verify" 2>&1; then
				echo "  audit verify failed:" >&2
				cat "$WORK/verify" >&2
				failed=1
			fi
			rm -f "$log"
		done
	done
done
exit $failed
