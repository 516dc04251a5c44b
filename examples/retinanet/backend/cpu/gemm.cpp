#include "gemm.hpp"

#include <algorithm>
#include <vector>

#include <Eigen/Core>

#include "tensor.hpp"

namespace retinanet::cpu {
namespace {

template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using const_map = Eigen::Map<const row_major<T>>;
template <class T>
using map = Eigen::Map<row_major<T>>;

// Products below this many multiply-adds run on the calling thread (a fork costs microseconds).
constexpr double min_parallel_work = 1 << 20;
// Blocks of one threaded product: enough to balance 16 threads, few enough that repacking the
// shared operand per block costs little.
constexpr std::ptrdiff_t max_blocks = 16;
// gemm_tn's k slices: at most this many, each at least this many times the longer side of C long.
constexpr std::ptrdiff_t max_k_slices = 8, max_k_slice_ratio = 4;

// Splits [0, total) into at most max_blocks blocks, each a multiple of `align` except the last.
// The blocks depend on the sizes only, never on the thread count: Eigen blocks a product by its
// own sizes, so a split that followed the thread count would change the bits of C with it.
template <class Fn>
void split(std::ptrdiff_t total, std::ptrdiff_t align, double work, const Fn& fn) {
    if (work < min_parallel_work) {
        fn(0, total);
        return;
    }
    const std::ptrdiff_t blocks = std::min(max_blocks, (total + align - 1) / align);
    const std::ptrdiff_t block = ((total + blocks - 1) / blocks + align - 1) / align * align;
    const std::ptrdiff_t tasks = (total + block - 1) / block;
    parallel_tasks(static_cast<std::size_t>(tasks), [&](std::size_t i) {
        const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(i) * block;
        fn(begin, std::min(total, begin + block) - begin);
    });
}

}  // namespace

// C = lhs * rhs (or C +=) for any Eigen operand expressions (maps, their transposes), the longer
// side of C split across threads: rows in blocks of 48 (the float kernel's register block), columns
// in blocks of 16.
template <class T, class Lhs, class Rhs>
void threaded_product(map<T>& C, const Lhs& lhs, const Rhs& rhs, bool accumulate) {
    const double work = static_cast<double>(C.rows()) * static_cast<double>(C.cols()) * static_cast<double>(lhs.cols());
    const auto store = [accumulate](auto&& dst, const auto& product) {
        if (accumulate) dst.noalias() += product;
        else dst.noalias() = product;
    };
    if (C.rows() >= C.cols())
        split(C.rows(), 48, work, [&](std::ptrdiff_t i, std::ptrdiff_t len) { store(C.middleRows(i, len), lhs.middleRows(i, len) * rhs); });
    else
        split(C.cols(), 16, work, [&](std::ptrdiff_t j, std::ptrdiff_t len) { store(C.middleCols(j, len), lhs * rhs.middleCols(j, len)); });
}

template <class T>
void gemm_nn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate) {
    map<T> C(c, m, n);
    threaded_product(C, const_map<T>(a, m, k), const_map<T>(b, k, n), accumulate);
}

template <class T>
void gemm_tn(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate) {
    const const_map<T> A(a, k, m), B(b, k, n);
    map<T> C(c, m, n);
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    if (work >= min_parallel_work && k >= 2 * max_k_slice_ratio * std::max(m, n)) {
        // A weight gradient (C small, k = N H W long): k is cut into slices, each summed into a
        // private C by one task, so no thread packs another's operands; the partial Cs are added
        // in slice order. The slices depend on the sizes only, never on the thread count, so the
        // result is the same bits on any number of threads.
        const std::ptrdiff_t slices = std::min<std::ptrdiff_t>(max_k_slices, k / (max_k_slice_ratio * std::max(m, n)));
        const std::ptrdiff_t block = (k + slices - 1) / slices;
        std::vector<row_major<T>> partial(static_cast<std::size_t>(slices));
        parallel_tasks(static_cast<std::size_t>(slices), [&](std::size_t i) {
            const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(i) * block, len = std::min(k, begin + block) - begin;
            partial[i].noalias() = A.middleRows(begin, len).transpose() * B.middleRows(begin, len);
        });
        if (!accumulate) C.setZero();
        for (const auto& p : partial) C += p;
        return;
    }
    threaded_product(C, A.transpose(), B, accumulate);
}

template <class T>
void gemm_nt(const T* a, const T* b, T* c, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, bool accumulate) {
    map<T> C(c, m, n);
    threaded_product(C, const_map<T>(a, m, k), const_map<T>(b, n, k).transpose(), accumulate);
}

#define RETINANET_GEMM(T)                                                                                      \
    template void gemm_nn<T>(const T*, const T*, T*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, bool); \
    template void gemm_tn<T>(const T*, const T*, T*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, bool); \
    template void gemm_nt<T>(const T*, const T*, T*, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, bool);
RETINANET_GEMM(float)
RETINANET_GEMM(double)
#undef RETINANET_GEMM

}  // namespace retinanet::cpu
