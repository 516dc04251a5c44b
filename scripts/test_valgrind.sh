#!/usr/bin/env bash
# Runs a representative subset of the tests under valgrind's memcheck: uninitialized reads, invalid
# accesses and leaks that the sanitizer builds could miss (they instrument our code only; valgrind
# sees every instruction, Eigen's, libstdc++'s and zlib's included).
# Built without -march=native (valgrind 3.19 does not decode AVX-512), so this also runs xsimd's
# SSE/AVX2 baseline kernels rather than the AVX-512 ones of the other builds.
#   scripts/test_valgrind.sh           (build-valgrind/ by default; BUILD_DIR=... JOBS=... to change)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh --sanitizers

build_dir=${BUILD_DIR:-build-valgrind}
jobs=${JOBS:-$(nproc)}
# The library's detection steps, COCO evaluation and JSON, and the example's checkpoint reader.
tests=(test_boxes test_coder test_anchors test_matcher test_nms test_retinanet test_coco_eval test_retinanet_npz)

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOCAL_NATIVE_ARCH=OFF -DFOCAL_WARNINGS_AS_ERRORS=ON \
      -DFOCAL_BUILD_TESTS=ON -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_BUILD_BENCHMARKS=OFF -DFOCAL_CUDA_COMPILE_CHECKS=OFF -DFOCAL_BUILD_CUDA=OFF
cmake --build "$build_dir" -j "$jobs" --target "${tests[@]}"

failed=()
for t in "${tests[@]}"; do
  exe=$(find "$build_dir/tests" -type f -name "$t" -perm -u+x | head -n 1)
  echo "== valgrind memcheck: $t"
  start=$SECONDS
  if valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       --track-origins=yes --quiet "$exe" --no-intro=true --minimal=true; then
    echo "   clean ($((SECONDS - start)) s)"
  else
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "valgrind memcheck found errors in: ${failed[*]}" >&2
  exit 1
fi
echo "valgrind memcheck: ${#tests[@]} test programs clean"
