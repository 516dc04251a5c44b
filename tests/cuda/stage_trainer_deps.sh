#!/usr/bin/env bash
# Copies the example trainer's host libraries (Eigen, nlohmann_json, stb, zlib: Debian 12's -dev
# packages) into one CMake prefix, for a GPU machine that has nvcc and CMake but none of them
# (tests/cuda/gpu_check_trainer.sh uses it as TRAINER_DEPS). About 14 MB.
#   tests/cuda/stage_trainer_deps.sh [DIR]     (default build-gpu-deps, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-gpu-deps}
lib=/usr/lib/x86_64-linux-gnu
for f in /usr/include/eigen3/Eigen/Core /usr/share/eigen3/cmake/Eigen3Config.cmake /usr/include/nlohmann/json.hpp \
         /usr/share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake /usr/include/stb/stb_image.h "$lib/libstb.so.0" /usr/include/zlib.h; do
  [[ -e $f ]] || { echo "stage_trainer_deps.sh: $f is missing (scripts/install_deps.sh installs it)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/include" "$out/share/cmake" "$out/share/eigen3" "$out/lib"
cp -r /usr/include/eigen3 /usr/include/nlohmann /usr/include/stb /usr/include/zlib.h /usr/include/zconf.h "$out/include/"
if [[ -e /usr/include/x86_64-linux-gnu/zconf.h ]]; then cp /usr/include/x86_64-linux-gnu/zconf.h "$out/include/"; fi
cp -r /usr/share/eigen3/cmake "$out/share/eigen3/"
cp -r /usr/share/cmake/nlohmann_json "$out/share/cmake/"
cp -P "$lib"/libstb.so* "$out/lib/"
cp -L "$lib/libz.so" "$out/lib/libz.so.1" && ln -sf libz.so.1 "$out/lib/libz.so"
du -sh "$out"
