// Threaded GEMMs over row-major buffers (Eigen's SIMD kernels; the longer output side is split
// across the layers' threads, each thread owning whole rows or columns of C).
#pragma once

#include <cstddef>

namespace retinanet::cpu {

// C (m x n) = A (m x k) * B (k x n), or C += when accumulate.
template <class T>
void gemm_nn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate);
// C (m x n) = A^T * B with A stored k x m (or C +=).
template <class T>
void gemm_tn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate);
// C (m x n) = A * B^T with A stored m x k and B stored n x k (or C +=).
template <class T>
void gemm_nt(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate);

}  // namespace retinanet::cpu
