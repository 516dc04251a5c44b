#!/usr/bin/env bash
# Installs the Debian 12 packages focal's build, tests and benchmarks need, if any is missing.
#   scripts/install_deps.sh            build + test dependencies
#   scripts/install_deps.sh --sanitizers  also clang, its sanitizer and libFuzzer runtimes, valgrind
#   scripts/install_deps.sh --peers    also torch / torchvision / OpenCV for the benchmark peer figures
#                                      (pycocotools, for the COCO evaluation peer, is not a Debian
#                                      package: `pip install pycocotools` into a python you own)
set -euo pipefail

packages=(cmake g++ make libeigen3-dev libxtensor-dev xtl-dev libxsimd-dev doctest-dev libbenchmark-dev nlohmann-json3-dev
          zlib1g-dev libstb-dev dataset-fashion-mnist openmpi-bin libopenmpi-dev iproute2 procps)  # the last seven: the example RetinaNet
          # (Open MPI: its data-parallel training; iproute2, procps: the two-machine simulation and the
          # MPI fault test)
if [[ "${1:-}" == "--sanitizers" ]]; then
  packages+=(clang libclang-rt-14-dev valgrind)
fi
if [[ "${1:-}" == "--peers" ]]; then
  packages+=(python3 python3-numpy python3-torch python3-torchvision python3-opencv libopenblas0-pthread)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "focal: all Debian packages present"
  exit 0
fi

echo "focal: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "focal: need root (or sudo) to apt-get install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
