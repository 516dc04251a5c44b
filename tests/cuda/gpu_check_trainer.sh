#!/usr/bin/env bash
# The GPU check of the example RetinaNet's CUDA trainer (examples/retinanet/backend/cuda): builds the
# programs, then
#   1. trains the demo configuration on FMNIST-Det on the GPU (DEMO_ITERATIONS, default 400) and
#      evaluates it (COCO AP on 500 test images);
#   2. evaluates one checkpoint on the CPU and on the GPU, with cuDNN's and with the im2col +
#      cuBLAS convolutions: every AP must agree with the CPU's within 1e-3 (CPU_CHECKPOINT, default:
#      the checkpoint the demo run of 1. wrote; give a CPU-trained one to show a CPU checkpoint
#      evaluating the same on the GPU);
#   1b. trains the demo configuration briefly through the data-parallel path on one rank
#      (--reduce-on-one-rank: NCCL's allreduce of the gradients and counts); an average over one
#      rank changes nothing, so its losses at iterations 20 and 40 must be 1.'s (within 1e-3);
#   3. times the paper configuration's training step at 800x1344, batch 8, with both convolution
#      paths, against torchvision's RetinaNet on the same GPU (benchmarks/peers_retinanet.py
#      --device cuda).
# Needs the examples' host libraries (Eigen, nlohmann_json, stb, zlib): the system's, or a prefix
# made by tests/cuda/stage_trainer_deps.sh and carried along (TRAINER_DEPS, default build-gpu-deps
# when it exists). Budget: about 6 minutes on an H100. tests/cuda/gpu_check.sh runs it last.
#   tests/cuda/gpu_check_trainer.sh     build in build-gpu-trainer/ (TRAINER_BUILD_DIR), results in $RESULTS,
#                                       $OUT or build-gpu-trainer/gpu_check/
# Exit status: non-zero when the build, the training run or the AP agreement fails (timings only report).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_dir=${TRAINER_BUILD_DIR:-build-gpu-trainer}
results=${RESULTS:-${OUT:-$build_dir/gpu_check}}
mkdir -p "$results"
start=$(date +%s)
stamp() { echo "[gpu_check_trainer +$(( $(date +%s) - start ))s] $*"; }

if ! command -v nvcc >/dev/null && [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
deps=${TRAINER_DEPS:-build-gpu-deps}
prefix=()
if [[ -d $deps ]]; then
  prefix=(-DCMAKE_PREFIX_PATH="$PWD/$deps")
  export LD_LIBRARY_PATH="$PWD/$deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
[[ $arch =~ ^[0-9]+$ ]] || arch=90
stamp "configure (sm_$arch${prefix:+, dependencies from $deps})"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" -DFOCAL_BUILD_CUDA=ON \
      -DFOCAL_BUILD_TESTS=OFF -DFOCAL_BUILD_BENCHMARKS=OFF -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_INSTALL=OFF \
      -DFOCAL_USE_XSIMD=OFF -DFOCAL_CUDA_COMPILE_CHECKS=OFF "${prefix[@]}" >"$results/trainer_configure.log" 2>&1 \
  || { tail -40 "$results/trainer_configure.log"; exit 1; }
stamp "build"
cmake --build "$build_dir" -j "$(nproc)" --target retinanet_train retinanet_evaluate retinanet_step_timer \
  >"$results/trainer_build.log" 2>&1 || { tail -60 "$results/trainer_build.log"; exit 1; }
bin=$build_dir/examples/retinanet

stamp "1. demo training on the GPU"
timeout 240 "$bin/retinanet_train" --config demo --device cuda --iterations "${DEMO_ITERATIONS:-400}" --log-every 20 \
  --eval-count 500 --output "$results/demo_gpu" 2>&1 | tee "$results/trainer_demo.log"
status=${PIPESTATUS[0]}
[[ $status == 0 ]] || { echo "retinanet_train --device cuda failed ($status)"; exit "$status"; }

stamp "1b. the NCCL reduction path on one rank"
timeout 120 "$bin/retinanet_train" --config demo --device cuda --iterations 100 --log-every 20 --eval-data none \
  --output "$results/demo_gpu_nccl" --reduce-on-one-rank --check-replicas 20 2>&1 | tee "$results/trainer_nccl.log"
status=${PIPESTATUS[0]}
[[ $status == 0 ]] || { echo "retinanet_train --device cuda --reduce-on-one-rank failed ($status)"; exit "$status"; }
python3 - "$results/trainer_demo.log" "$results/trainer_nccl.log" <<'PY' || exit 1
import re, sys
def losses(f):
    return {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"iter +(\d+)/\d+ +loss ([\d.]+)", open(f).read())}
alone, nccl = map(losses, sys.argv[1:])
for it in (20, 40):
    print(f"iteration {it}: loss {alone[it]} without the reduction, {nccl[it]} through NCCL")
    if abs(alone[it] - nccl[it]) > 1e-3 * alone[it]:
        sys.exit("the one-rank NCCL path changed the losses")
PY

stamp "2. one checkpoint evaluated on the CPU and on the GPU (cuDNN and im2col + cuBLAS convolutions)"
checkpoint=${CPU_CHECKPOINT:-$results/demo_gpu/checkpoint.npz}
for run in cpu:auto cuda:auto cuda:gemm; do
  device=${run%%:*} conv=${run##*:}
  timeout 120 "$bin/retinanet_evaluate" --config demo --weights "$checkpoint" --device "$device" --conv "$conv" --count 500 \
    >"$results/evaluate_${device}_$conv.txt" 2>"$results/evaluate_${device}_$conv.log" || { cat "$results/evaluate_${device}_$conv.log"; exit 1; }
done
paste "$results/evaluate_cpu_auto.txt" "$results/evaluate_cuda_auto.txt" "$results/evaluate_cuda_gemm.txt"
python3 - "$results"/evaluate_cpu_auto.txt "$results"/evaluate_cuda_auto.txt "$results"/evaluate_cuda_gemm.txt <<'PY' || status=1
import sys
cpu, *gpus = ({l.split()[0]: float(l.split()[1]) for l in open(f) if l.strip()} for f in sys.argv[1:])
worst = max(abs(cpu[k] - g[k]) for g in gpus for k in cpu)
print(f"CPU vs GPU evaluation of one checkpoint: largest AP difference {worst:.5f} (must be <= 1e-3)")
sys.exit(0 if worst <= 1e-3 else 1)
PY

stamp "3. paper training step, 800x1344, batch 8: focal vs torchvision on this GPU"
set +e
for conv in auto gemm; do
  timeout 150 "$bin/retinanet_step_timer" --config paper --size 800x1344 --batch 8 --device cuda --conv "$conv" --steps 5 \
    >"$results/step_focal_$conv.json" 2>"$results/step_focal_$conv.log"
done
timeout 180 python3 benchmarks/peers_retinanet.py --device cuda --cases train_step/paper/800x1344/batch:8 --repeats 5 \
  >"$results/step_torchvision.json" 2>"$results/step_torchvision.log"
set -e
python3 - "$results/step_torchvision.json" "$results/step_focal_auto.json" "$results/step_focal_gemm.json" <<'PY' | tee "$results/trainer_table.md"
import json, sys
def last_case(path):
    try:
        rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    except OSError:
        return None
    rows = [r for r in rows if "case" in r]
    return rows[-1] if rows else None
torch = last_case(sys.argv[1])
t = f"{torch['seconds']:.4f} (min {torch['min_seconds']:.4f})" if torch else "unavailable (see step_torchvision.log)"
print("| case | focal (s) | torchvision (s) | torchvision / focal |")
print("| --- | --- | --- | --- |")
for path in sys.argv[2:]:
    focal = last_case(path)
    conv = focal["device"].split("), ", 1)[-1] if focal else path  # "cuDNN convolutions in tf32"
    f = f"{focal['seconds']:.4f} (min {focal['min_seconds']:.4f})" if focal else f"failed (see {path.replace('.json', '.log')})"
    r = f"{torch['seconds'] / focal['seconds']:.2f}x" if focal and torch else "-"
    print(f"| train_step/paper/800x1344/batch:8, {conv} | {f} | {t} | {r} |")
    if focal and torch and focal.get("parameters") != torch.get("parameters"):
        print(f"(the models differ: {focal.get('parameters')} against {torch.get('parameters')} parameters)")
PY
stamp "done: status $status"
exit "$status"
