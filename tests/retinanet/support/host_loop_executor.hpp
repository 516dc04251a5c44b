// The CUDA backend's executor (examples/retinanet/backend/cuda/executor.hpp) as a serial loop on
// the host: runs the CUDA backend's layers, ops and parameter store in the tests, without a GPU.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/cuda/executor.hpp"

namespace retinanet::testing {

using cuda::index;

struct host_loop_executor {
    template <class T>
    std::shared_ptr<T> allocate(std::size_t count) const {
        return std::shared_ptr<T>(new T[count > 0 ? count : 1], std::default_delete<T[]>());
    }
    template <class Op>
    void for_each(index count, const Op& op) const {
        for (index e = 0; e < count; ++e) op(e);
    }
    // The textbook triple loop: a reference, not a fast GEMM (the host backend runs tests).
    void gemm(bool ta, bool tb, index m, index n, index k, float alpha, const float* a, index lda, const float* b, index ldb, float beta,
              float* c, index ldc) const {
        std::vector<double> row(static_cast<std::size_t>(n));
        for (index i = 0; i < m; ++i) {
            std::fill(row.begin(), row.end(), 0.0);
            for (index p = 0; p < k; ++p) {
                const double av = ta ? a[p * lda + i] : a[i * lda + p];
                for (index j = 0; j < n; ++j) row[static_cast<std::size_t>(j)] += av * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            }
            for (index j = 0; j < n; ++j) {
                const double prior = beta == 0.0f ? 0.0 : static_cast<double>(beta) * c[i * ldc + j];
                c[i * ldc + j] = static_cast<float>(alpha * row[static_cast<std::size_t>(j)] + prior);
            }
        }
    }
    void zero(void* p, std::size_t bytes) const { std::memset(p, 0, bytes); }
    void copy(void* dst, const void* src, std::size_t bytes) const { std::memcpy(dst, src, bytes); }
    void upload(void* dst, const void* host, std::size_t bytes) const { std::memcpy(dst, host, bytes); }
    void download(void* host, const void* src, std::size_t bytes) const { std::memcpy(host, src, bytes); }
};

static_assert(cuda::executor<host_loop_executor>);

}  // namespace retinanet::testing
