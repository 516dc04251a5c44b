// focal/config.hpp: compiler switches shared by every focal header.
//
// FOCAL_HD marks functions that run on the host and, under nvcc, on the device (policies, math).
// FOCAL_HAS_XSIMD is 1 when the SIMD backend is enabled: define FOCAL_USE_XSIMD (the CMake target
// focal::xsimd does) in host code; device compilation never sees xsimd.
#pragma once

#define FOCAL_VERSION_MAJOR 0
#define FOCAL_VERSION_MINOR 2
#define FOCAL_VERSION_PATCH 0
#define FOCAL_VERSION (FOCAL_VERSION_MAJOR * 10000 + FOCAL_VERSION_MINOR * 100 + FOCAL_VERSION_PATCH)

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FOCAL_HD __host__ __device__
#define FOCAL_DEVICE __device__
#define FOCAL_HOST __host__
#else
#define FOCAL_HD
#define FOCAL_DEVICE
#define FOCAL_HOST
#endif

// True while compiling the device pass of a .cu file: host-only code (exceptions, threads) is left out.
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define FOCAL_DEVICE_PASS 1
#else
#define FOCAL_DEVICE_PASS 0
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define FOCAL_INLINE __forceinline
#elif defined(__CUDACC__)
#define FOCAL_INLINE __forceinline__
#else
#define FOCAL_INLINE inline __attribute__((always_inline))
#endif

#if defined(FOCAL_USE_XSIMD) && FOCAL_USE_XSIMD && !defined(__CUDACC__) && !defined(__HIPCC__)
#define FOCAL_HAS_XSIMD 1
#else
#define FOCAL_HAS_XSIMD 0
#endif

namespace focal {
struct version_info {
    int major, minor, patch;
};
inline constexpr version_info version{FOCAL_VERSION_MAJOR, FOCAL_VERSION_MINOR, FOCAL_VERSION_PATCH};
}  // namespace focal
