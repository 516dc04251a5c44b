// What the CUDA backend's layers (layers.hpp) run on: an executor, which owns the memory and runs
// the element ops (ops.hpp) and the GEMMs. cuda_executor.cuh is the GPU's; the tests run the same
// layers on a serial host loop (tests/retinanet/support/host_loop_executor.hpp) without a GPU.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>

#include "ops.hpp"

namespace retinanet::cuda {

// An executor E provides, everything ordered as called (one CUDA stream):
//   allocate<T>(count)      uninitialized memory for count T
//   for_each(count, op)     op(e) for e in [0, count)
//   gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
//                           row-major C (m x n) = alpha op(A) op(B) + beta C, op(X) = X^T when t (BLAS)
//   zero(p, bytes), copy(dst, src, bytes), upload(dst, host, bytes), download(host, src, bytes)
//                           download returns once the bytes are on the host
template <class E>
concept executor = requires(E& e, void* p, const void* cp, std::size_t bytes, const float* a, float* c) {
    { e.template allocate<float>(bytes) } -> std::same_as<std::shared_ptr<float>>;
    e.for_each(index{1}, relu_op{a, nullptr, c, nullptr});
    e.gemm(false, false, index{1}, index{1}, index{1}, 1.0f, a, index{1}, a, index{1}, 0.0f, c, index{1});
    e.zero(p, bytes);
    e.copy(p, cp, bytes);
    e.upload(p, cp, bytes);
    e.download(p, cp, bytes);
};

}  // namespace retinanet::cuda
