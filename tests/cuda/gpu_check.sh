#!/usr/bin/env bash
# The GPU check: builds focal's CUDA tests and benchmarks, runs them, times torchvision on the same
# cases and prints one table. Meant for a fresh machine with an NVIDIA GPU, nvcc, CMake and PyTorch
# with CUDA, and none of the Debian -dev packages the rest of focal's build uses (only focal's own
# headers and CUDA's, CUB included, are needed). Budget: under 6 minutes, then about 6 more for the
# example trainer's check (gpu_check_trainer.sh, which needs the examples' host libraries).
#   tests/cuda/gpu_check.sh                     build in build-gpu/, results in build-gpu/gpu_check/
#   BUILD_DIR=... RESULTS=... tests/cuda/gpu_check.sh
#   SKIP_PEERS=1 tests/cuda/gpu_check.sh        focal only (no torchvision timings)
#   FILTER=nms tests/cuda/gpu_check.sh          only the tests and benchmarks whose name contains it
#   SKIP_TRAINER=1 tests/cuda/gpu_check.sh      without the example trainer's check (gpu_check_trainer.sh)
# Exit status: non-zero when the build or a test fails, or the trainer's check fails (benchmarks
# and peers only report).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_dir=${BUILD_DIR:-build-gpu}
results=${RESULTS:-${OUT:-$build_dir/gpu_check}}
mkdir -p "$results"
start=$(date +%s)
stamp() { echo "[gpu_check +$(( $(date +%s) - start ))s] $*"; }

if ! command -v nvcc >/dev/null && [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# Build for this GPU only (compute capability from nvidia-smi, e.g. 9.0 -> 90): half the compile time
# of the default 80;90.
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
[[ $arch =~ ^[0-9]+$ ]] || arch=90
stamp "configure (sm_$arch)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DFOCAL_BUILD_CUDA=ON -DFOCAL_BUILD_TESTS=OFF -DFOCAL_BUILD_BENCHMARKS=OFF -DFOCAL_BUILD_EXAMPLES=OFF \
      -DFOCAL_INSTALL=OFF -DFOCAL_USE_XSIMD=OFF >"$results/configure.log" 2>&1 \
  || { cat "$results/configure.log"; exit 1; }
stamp "build"
cmake --build "$build_dir" -j "$(nproc)" --target focal_cuda_tests focal_cuda_bench example_cuda_retinanet_steps >"$results/build.log" 2>&1 \
  || { tail -60 "$results/build.log"; exit 1; }

stamp "tests"
set +e
timeout 180 "$build_dir/tests/cuda/focal_cuda_tests" ${FILTER:-} 2>&1 | tee "$results/tests.log"
test_status=${PIPESTATUS[0]}
stamp "example"
timeout 60 "$build_dir/examples/cuda/example_cuda_retinanet_steps" 2>&1 | tee "$results/example.log"
example_status=${PIPESTATUS[0]}
[[ $example_status == 0 ]] || { echo "example_cuda_retinanet_steps failed ($example_status)"; [[ $test_status != 0 ]] || test_status=$example_status; }
stamp "benchmarks"
timeout 150 "$build_dir/benchmarks/cuda/focal_cuda_bench" --json "$results/focal.json" ${FILTER:-} 2>&1 \
  | tee "$results/bench.log"
peers=()
if [[ -z "${SKIP_PEERS:-}" ]]; then
  for script in benchmarks/cuda/peers_*.py; do
    name=$(basename "$script" .py)
    stamp "$name"
    timeout 120 python3 "$script" >"$results/$name.json" 2>"$results/$name.log" || echo "  $name failed (see $results/$name.log)"
    peers+=("$results/$name.json")
  done
fi
set -e

stamp "table"
python3 tests/cuda/gpu_check_table.py "$results/focal.json" "${peers[@]}" | tee "$results/table.md"
stamp "done: tests and example exit status $test_status"

# The example RetinaNet's CUDA trainer (its own script: about 6 more minutes; SKIP_TRAINER=1 skips
# it, e.g. where one command may run 10 minutes at most: run the two scripts as two commands).
if [[ -z "${SKIP_TRAINER:-}" ]]; then
  RESULTS="$results" tests/cuda/gpu_check_trainer.sh || { trainer_status=$?; [[ $test_status != 0 ]] || test_status=$trainer_status; }
fi
exit "$test_status"
