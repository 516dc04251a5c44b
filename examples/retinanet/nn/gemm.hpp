// Threaded GEMMs over row-major buffers (Eigen's SIMD kernels; columns or rows split across the
// layers' threads in blocks of whole cache lines).
#pragma once

#include <cstddef>

namespace retinanet::nn {

// C (m x n) = A (m x k) * B (k x n), or C += when accumulate.
template <class T>
void gemm_nn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate);
// C (m x n) = A^T * B with A stored k x m.
template <class T>
void gemm_tn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate);
// C (m x n) += A * B^T with A stored m x k and B stored n x k.
template <class T>
void gemm_nt_accumulate(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k);

}  // namespace retinanet::nn
