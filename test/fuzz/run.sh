#!/bin/sh
# run.sh - run every fuzz target for a while from its seed corpus
# (`make fuzz`, `make fuzz-long`).
#
#   test/fuzz/run.sh SECONDS BUILDDIR TARGET...
#
# Each TARGET (BUILDDIR/fuzz/fuzz_NAME) starts from its seeds in
# test/fuzz/corpus/fuzz_NAME (read, never written) and keeps what it finds
# in BUILDDIR/corpus/fuzz_NAME. A target without seeds fails before any
# run starts. A crash, leak or sanitizer report fails the run and shows
# the end of its log; the reproducer is left in BUILDDIR/fuzz/artifacts.
# For each run the final line is printed: executions (#N), cov: (edges)
# and ft: (features) as libFuzzer counts them.
set -eu
secs=$1 build=$2
shift 2
here=$(dirname "$0")

missing=0
for bin in "$@"; do
	name=$(basename "$bin")
	seeds=$here/corpus/$name
	if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
		echo "fuzz: $name has no seed corpus: add a few small valid" \
		    "inputs in $seeds/" >&2
		missing=1
	fi
done
[ "$missing" = 0 ] || exit 1

mkdir -p "$build/fuzz/artifacts"
for bin in "$@"; do
	name=$(basename "$bin")
	work=$build/corpus/$name
	log=$build/corpus/$name.log
	mkdir -p "$work"
	echo "== $name ($secs s)"
	if ! "$bin" -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix="$build/fuzz/artifacts/$name-" \
	    "$work" "$here/corpus/$name" >"$log" 2>&1; then
		tail -n 40 "$log"
		echo "fuzz: $name failed (log: $log)" >&2
		exit 1
	fi
	grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || {
		tail -n 20 "$log"
		echo "fuzz: $name did not report its final line" >&2
		exit 1
	}
done
