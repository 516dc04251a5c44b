#include "gemm.hpp"

#include <algorithm>
#include <vector>

#include <Eigen/Core>

#include "tensor.hpp"

namespace retinanet::nn {
namespace {

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using const_map = Eigen::Map<const row_major<T>>;
template <class T>
using map = Eigen::Map<row_major<T>>;

// Products below this many multiply-adds run on the calling thread (a fork costs microseconds).
constexpr double min_parallel_work = 1 << 20;

// Splits [0, total) into at most threads() blocks, each a multiple of `align` except the last.
template <class Fn>
void split(std::ptrdiff_t total, std::ptrdiff_t align, double work, const Fn& fn) {
    if (work < min_parallel_work) {
        fn(0, total);
        return;
    }
    const std::ptrdiff_t t = std::max<std::ptrdiff_t>(1, std::min<std::ptrdiff_t>(threads(), (total + align - 1) / align));
    const std::ptrdiff_t block = ((total + t - 1) / t + align - 1) / align * align;
    const std::ptrdiff_t tasks = (total + block - 1) / block;
    parallel_tasks(static_cast<std::size_t>(tasks), [&](std::size_t i) {
        const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(i) * block;
        fn(begin, std::min(total, begin + block) - begin);
    });
}

}  // namespace

template <class T>
void gemm_nn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate) {
    const const_map<T> A(a, m, k), B(b, k, n);
    map<T> C(c, m, n);
    const auto rows = [&](std::ptrdiff_t i, std::ptrdiff_t len) {
        if (accumulate) C.middleRows(i, len).noalias() += A.middleRows(i, len) * B;
        else C.middleRows(i, len).noalias() = A.middleRows(i, len) * B;
    };
    const auto cols = [&](std::ptrdiff_t j, std::ptrdiff_t len) {
        if (accumulate) C.middleCols(j, len).noalias() += A * B.middleCols(j, len);
        else C.middleCols(j, len).noalias() = A * B.middleCols(j, len);
    };
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    if (m >= n) split(m, 48, work, rows);
    else split(n, 16, work, cols);
}

template <class T>
void gemm_tn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate) {
    const const_map<T> A(a, k, m), B(b, k, n);
    map<T> C(c, m, n);
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const std::ptrdiff_t t = threads();
    if (t > 1 && work >= min_parallel_work && k >= 8 * std::max(m, n)) {
        // A weight gradient (C small, k = N H W long): each thread sums its own slice of k into a
        // private C, so no thread packs the other's operands; the partial Cs are added in order.
        std::vector<row_major<T>> partial(static_cast<std::size_t>(t));
        const std::ptrdiff_t block = (k + t - 1) / t;
        parallel_tasks(static_cast<std::size_t>(t), [&](std::size_t i) {
            const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(i) * block, len = std::min(k, begin + block) - begin;
            partial[i].noalias() = A.middleRows(begin, len).transpose() * B.middleRows(begin, len);
        });
        if (!accumulate) C.setZero();
        for (const auto& p : partial) C += p;
        return;
    }
    const auto rows = [&](std::ptrdiff_t i, std::ptrdiff_t len) {
        if (accumulate) C.middleRows(i, len).noalias() += A.middleCols(i, len).transpose() * B;
        else C.middleRows(i, len).noalias() = A.middleCols(i, len).transpose() * B;
    };
    const auto cols = [&](std::ptrdiff_t j, std::ptrdiff_t len) {
        if (accumulate) C.middleCols(j, len).noalias() += A.transpose() * B.middleCols(j, len);
        else C.middleCols(j, len).noalias() = A.transpose() * B.middleCols(j, len);
    };
    if (m >= n) split(m, 48, work, rows);
    else split(n, 16, work, cols);
}

template <class T>
void gemm_nt(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate) {
    const const_map<T> A(a, m, k), B(b, n, k);
    map<T> C(c, m, n);
    const auto rows = [&](std::ptrdiff_t i, std::ptrdiff_t len) {
        if (accumulate) C.middleRows(i, len).noalias() += A.middleRows(i, len) * B.transpose();
        else C.middleRows(i, len).noalias() = A.middleRows(i, len) * B.transpose();
    };
    const auto cols = [&](std::ptrdiff_t j, std::ptrdiff_t len) {
        if (accumulate) C.middleCols(j, len).noalias() += A * B.middleRows(j, len).transpose();
        else C.middleCols(j, len).noalias() = A * B.middleRows(j, len).transpose();
    };
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    if (m >= n) split(m, 48, work, rows);
    else split(n, 16, work, cols);
}

#define RETINANET_GEMM(T)                                                                                      \
    template void gemm_nn<T>(const T*, const T*, T*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, bool); \
    template void gemm_tn<T>(const T*, const T*, T*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, bool); \
    template void gemm_nt<T>(const T*, const T*, T*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, bool);
RETINANET_GEMM(float)
RETINANET_GEMM(double)
#undef RETINANET_GEMM

}  // namespace retinanet::nn
