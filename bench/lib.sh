# Shared by the bench/*.sh scripts (sourced, not run): where drbook is built and how.
# Benchmarks build a snapshot of the committed tree (git archive HEAD) so that a figure belongs
# to a commit and is not disturbed by uncommitted edits in the checkout; BENCH_WORKTREE=1 builds
# the checkout as it is instead. Release, because Debug or sanitizer builds measure the
# instrumentation.
#
# in:  ROOT (the repository), BUILD_DIR (default ROOT/build-bench), BENCH_WORKTREE
# out: SRC_DIR (the sources built), OBJ_DIR (the cmake build folder), BENCH_REV (what was built)

BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}

bench_sources() {
	local rev
	mkdir -p "$BUILD_DIR"
	if [ "${BENCH_WORKTREE:-0}" = 1 ] || ! rev=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
		SRC_DIR=$ROOT
		OBJ_DIR=$BUILD_DIR/obj-worktree
		BENCH_REV="working tree of $ROOT"
		return 0
	fi
	SRC_DIR=$BUILD_DIR/src-$rev
	OBJ_DIR=$BUILD_DIR/obj-$rev
	BENCH_REV="commit $rev (git archive HEAD)"
	if [ ! -f "$SRC_DIR/CMakeLists.txt" ]; then
		# one snapshot at a time: the previous commit's sources and objects go
		rm -rf "$BUILD_DIR"/src-* "$BUILD_DIR"/obj-*
		mkdir -p "$SRC_DIR.tmp"
		git -C "$ROOT" archive HEAD | tar -x -C "$SRC_DIR.tmp"
		mv "$SRC_DIR.tmp" "$SRC_DIR"
	fi
}

# bench_build TARGET...: configure once, then build the targets (a no-op when up to date).
bench_build() {
	bench_sources
	if [ ! -f "$OBJ_DIR/CMakeCache.txt" ]; then
		cmake -S "$SRC_DIR" -B "$OBJ_DIR" -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR/cmake.log" 2>&1 || {
			cat "$BUILD_DIR/cmake.log" >&2
			return 1
		}
	fi
	cmake --build "$OBJ_DIR" --target "$@" -j2 >"$BUILD_DIR/build.log" 2>&1 || {
		tail -n 30 "$BUILD_DIR/build.log" >&2
		echo "bench: building $* from $BENCH_REV failed (log: $BUILD_DIR/build.log)" >&2
		return 1
	}
}
