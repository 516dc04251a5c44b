#!/usr/bin/env bash
# Builds focal's libFuzzer targets (fuzz/) with clang, AddressSanitizer and UBSan, runs each for
# FUZZ_SECONDS on a fresh copy of its seed corpus (under the build directory: fuzz/corpus/ is never
# written) and prints one summary line per target. Exits non-zero if any target crashes, leaks,
# times out or violates an invariant; the input is kept in <build>/fuzz-runs/<target>/artifacts/.
#   scripts/fuzz.sh                          every target, 30 s each, in build-fuzz/
#   FUZZ_SECONDS=600 scripts/fuzz.sh nms     some targets, longer
#   BUILD_DIR=... JOBS=<build jobs> FUZZ_JOBS=<targets at once, default 1> scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh --sanitizers

build_dir=${BUILD_DIR:-build-fuzz}
jobs=${JOBS:-$(nproc)}
seconds=${FUZZ_SECONDS:-30}
fuzz_jobs=${FUZZ_JOBS:-1}
all=(nms matcher coder postprocess coco_json checkpoint)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ -d fuzz/corpus/$t ]] || { echo "fuzz.sh: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
done

# The libraries are instrumented too (coverage and sanitizers inside the example's npz reader);
# only the fuzz targets link libFuzzer's main.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
      -DFOCAL_BUILD_FUZZERS=ON -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_BUILD_TESTS=OFF -DFOCAL_BUILD_BENCHMARKS=OFF \
      -DFOCAL_CUDA_COMPILE_CHECKS=OFF -DFOCAL_BUILD_CUDA=OFF -DFOCAL_INSTALL=OFF -DFOCAL_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"

runs="$build_dir/fuzz-runs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {  # target: fuzzes it, leaves log and exit status in $runs/<target>/
  local t=$1 dir="$runs/$1" rc=0
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp fuzz/corpus/"$t"/* "$dir/corpus/"
  local dict=()
  [[ -f fuzz/$t.dict ]] && dict=("-dict=fuzz/$t.dict")
  "$build_dir/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "${dict[@]}" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

active=0
for t in "${targets[@]}"; do
  if [[ $fuzz_jobs -le 1 ]]; then
    run_one "$t"
  else
    run_one "$t" &
    active=$((active + 1))
    if [[ $active -ge $fuzz_jobs ]]; then wait -n || true; active=$((active - 1)); fi
  fi
done
wait

status=0
printf '%-12s %12s %8s %8s %8s %7s  %s\n' target executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
  dir="$runs/$t"
  rc=$(cat "$dir/rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  artifacts=$(find "$dir/artifacts" -type f | wc -l)
  result=ok
  if [[ $rc -ne 0 || $artifacts -ne 0 ]]; then
    result="FAILED (exit $rc; $dir/log, $dir/artifacts/)"
    status=1
  fi
  printf '%-12s %12s %8s %8s %8s %7s  %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "$corpus" "$result"
done
if [[ $status -ne 0 ]]; then
  for t in "${targets[@]}"; do
    if [[ $(cat "$runs/$t/rc") -ne 0 ]]; then
      echo "---- $t: last lines of $runs/$t/log"
      tail -n 40 "$runs/$t/log"
      echo "reproduce: $build_dir/fuzz/fuzz_$t <artifact>   (fuzz/README.md)"
    fi
  done
fi
exit $status
