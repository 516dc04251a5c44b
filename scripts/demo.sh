#!/usr/bin/env bash
# The demo: trains focal's example RetinaNet on FMNIST-Det on the CPU for about 10 minutes,
# evaluates it on the test split (COCO AP / AP50 / AP75) and draws test detections.
#   scripts/demo.sh                     install what is missing, build (Release), train, evaluate
#   MINUTES=3 THREADS=2 BUILD_DIR=... OUTPUT=... scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh

build_dir=${BUILD_DIR:-build-demo}
output=${OUTPUT:-runs/demo}
minutes=${MINUTES:-10}
threads=${THREADS:-$(nproc)}

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFOCAL_BUILD_TESTS=OFF -DFOCAL_BUILD_BENCHMARKS=OFF \
      -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_BUILD_CUDA=OFF >/dev/null
cmake --build "$build_dir" --target retinanet_train -j "$(nproc)"

"$build_dir/examples/retinanet/retinanet_train" --config demo --minutes "$minutes" --threads "$threads" \
    --output "$output" --eval-count 500 "$@"
echo "demo: detections drawn in $output/detections.png, metrics in $output/metrics.json"
