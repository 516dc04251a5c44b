#!/usr/bin/env bash
# Builds the unit tests and examples with clang's AddressSanitizer + UndefinedBehaviorSanitizer
# and runs them: any out-of-bounds access, use after free, signed overflow, bad cast or misaligned
# access fails the run.
#   scripts/test_sanitizers.sh           (build-asan/ by default; BUILD_DIR=... JOBS=... to change)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh --sanitizers

build_dir=${BUILD_DIR:-build-asan}
jobs=${JOBS:-$(nproc)}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
      -DFOCAL_WARNINGS_AS_ERRORS=ON -DFOCAL_BUILD_TESTS=ON -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_BUILD_BENCHMARKS=OFF \
      -DFOCAL_CUDA_COMPILE_CHECKS=OFF
# The unit tests and examples only: the compile and package checks add nothing under sanitizers.
cmake --build "$build_dir" -j "$jobs" --target $(cd "$build_dir" && ctest -N -E 'package|header|cuda' | awk '/Test +#/ {print $3}')
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -E 'package|header|cuda'
