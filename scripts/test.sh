#!/usr/bin/env bash
# Builds focal's tests in Release with warnings as errors and runs them with ctest.
#   scripts/test.sh              install what is missing, configure, build, test (build/ by default)
#   BUILD_DIR=... JOBS=... scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh

# nvcc, when the CUDA toolkit is installed but not on PATH, for the device-compile check.
if ! command -v nvcc >/dev/null && [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFOCAL_WARNINGS_AS_ERRORS=ON -DFOCAL_BUILD_TESTS=ON \
      -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_BUILD_BENCHMARKS=ON
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
