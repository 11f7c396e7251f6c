#!/bin/sh
# fuzz/run.sh - runs every libFuzzer target of fuzz/ for a bounded time over
# its seed corpus (fuzz/corpus/NAME), as `make check` does; prints TAP.
#
# A target that crashes, leaks, trips UBSan or breaks one of its invariants
# fails here, and the input that did it is kept as
# $ANYON_BUILDDIR/fuzz/crash-NAME-* (replay: fuzz/fuzz-NAME FILE).
# Targets that were not built fail too: configure found no clang that links
# -fsanitize=fuzzer (Debian: clang libclang-rt-14-dev; ./dev build installs
# them). Never a silent skip.
#
# ANYON_FUZZ_SECONDS (default 4) and ANYON_FUZZ_RUNS (default 200000) bound
# each target; new inputs found go to a scratch directory, never to the tree.
src=${ANYON_SRCDIR:?run through make check}
build=${ANYON_BUILDDIR:?run through make check}
secs=${ANYON_FUZZ_SECONDS:-4}
runs=${ANYON_FUZZ_RUNS:-200000}
n=0
failed=0
work=$build/fuzz/run.work

if [ -z "$ANYON_FUZZ_TARGETS" ]; then
	echo "Bail out! no fuzz targets listed (ANYON_FUZZ_TARGETS)"
	exit 1
fi
rm -rf "$work" && mkdir -p "$work" || { echo "Bail out! cannot make $work"; exit 1; }
for t in $ANYON_FUZZ_TARGETS; do
	name=${t#fuzz/fuzz-}
	n=$((n + 1))
	bin=$build/$t
	seeds=$src/fuzz/corpus/$name
	if [ ! -x "$bin" ]; then
		echo "not ok $n - $name: not built: ${ANYON_FUZZ_WHY:-see config.log}"
		failed=1
		continue
	fi
	if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
		echo "not ok $n - $name: no seed corpus in $seeds"
		failed=1
		continue
	fi
	mkdir -p "$work/$name"
	# detect_leaks: a leak is a failure too. The first directory takes
	# new inputs; the seeds are only read.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	"$bin" -max_total_time="$secs" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
		-print_final_stats=1 -artifact_prefix="$build/fuzz/crash-$name-" \
		"$work/$name" "$seeds" > "$work/$name.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
	if [ $rc -eq 0 ] && [ -n "$execs" ] && [ "$execs" -gt 0 ]; then
		echo "ok $n - $name: $execs inputs, no crash, leak or broken invariant"
	else
		echo "not ok $n - $name: exit $rc after ${execs:-no} inputs; log follows"
		sed 's/^/# /' "$work/$name.log" | tail -n 60
		failed=1
	fi
done
echo "1..$n"
exit $failed
