#!/usr/bin/env bash
# Builds the unit tests and examples with AddressSanitizer + UndefinedBehaviorSanitizer and runs
# them: any out-of-bounds access, use after free, leak, signed overflow, bad cast or misaligned
# access fails the run.
#   scripts/test_sanitizers.sh                clang, then gcc (build-asan-clang/, build-asan-gcc/)
#   COMPILERS="gcc" scripts/test_sanitizers.sh   one of them
#   BUILD_DIR=... JOBS=... scripts/test_sanitizers.sh   (BUILD_DIR is suffixed with -clang / -gcc)
#   GCC_SCOPE=all scripts/test_sanitizers.sh   gcc also builds the example's tests (default: library
#                                              tests only; clang covers the example, and gcc's
#                                              instrumented build of it alone takes ~25 min on 2 cores)
# The MPI tests (2 ranks under mpiexec) are left out: Open MPI's allocations at MPI_Init are
# reported as leaks, and the same code runs un-instrumented in scripts/test.sh.
# clang builds at -O2, gcc at -Og: two optimization levels shake out different code paths. Debug
# information is line tables only (what ASan's reports need). gcc's instrumented compile of the
# large test files is CI's longest stage: -Og -g1 takes 57% less than -O1 -g (test_nms.cpp 78 ->
# 34 s) for a test run of 13 s instead of 10. (-O0 is not an option: xsimd's AVX-512BW intrinsics
# do not compile without optimization.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh --sanitizers

build_root=${BUILD_DIR:-build-asan}
jobs=${JOBS:-$(nproc)}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

for compiler in ${COMPILERS:-clang gcc}; do
  case $compiler in
    clang) cxx=clang++; opt="-O2 -gline-tables-only"; exclude='package|header|cuda|data_parallel|mpi_' ;;
    gcc) cxx=g++; opt="-Og -g1"; exclude='package|header|cuda|data_parallel|mpi_'
         [[ ${GCC_SCOPE:-library} == all ]] || exclude="$exclude|test_retinanet_" ;;
    *) echo "test_sanitizers.sh: COMPILERS must list clang and/or gcc, got '$compiler'" >&2; exit 2 ;;
  esac
  build_dir=$build_root-$compiler
  echo "== AddressSanitizer + UBSan, $compiler ($build_dir)"
  CXX=$cxx cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt -DNDEBUG" \
        -DFOCAL_WARNINGS_AS_ERRORS=ON -DFOCAL_BUILD_TESTS=ON -DFOCAL_BUILD_EXAMPLES=ON -DFOCAL_BUILD_BENCHMARKS=OFF \
        -DFOCAL_CUDA_COMPILE_CHECKS=OFF -DFOCAL_BUILD_CUDA=OFF
  # The unit tests and examples only: the compile and package checks add nothing under sanitizers.
  cmake --build "$build_dir" -j "$jobs" --target $(cd "$build_dir" && ctest -N -E "$exclude" | awk '/Test +#/ {print $3}')
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -E "$exclude"
done
