// The transforms of Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray, "Fast Algorithms
// for Convolutional Neural Networks", CVPR 2016), on tiles of channel vectors:
//   input   V = B^T d B      (alpha x alpha from the alpha x alpha input tile d, alpha = m + 2)
//   filter  U = G g G^T      (alpha x alpha from the 3 x 3 kernel g)
//   output  Y = A^T M A      (m x m from the alpha x alpha products M = sum_c U ⊙ V)
// and their adjoints for the gradients: dM = A dY A^T, dg = G^T dU G.
// m = 2 interpolates at 0, ±1 and infinity (entries 0, ±1, ±1/2: nearly exact in floating point);
// m = 4 at 0, ±1, ±2 and infinity (entries up to 8 and down to 1/24: an error a few times larger,
// 4x fewer multiplies than direct convolution instead of 2.25x).
#pragma once

#include <type_traits>
#include <utility>

namespace retinanet::cpu::winograd {

// Channels per transform step: a tile's rows of `chunk` channels live in local arrays, where the
// loops over the channels vectorize without alias checks.
constexpr int chunk = 32;

template <int Rows, int Cols>
struct table {
    static constexpr int rows = Rows, cols = Cols;
    double v[Rows][Cols];
};

template <int Rows, int Cols>
constexpr table<Cols, Rows> transposed(const table<Rows, Cols>& t) {
    table<Cols, Rows> r{};
    for (int i = 0; i < Rows; ++i)
        for (int j = 0; j < Cols; ++j) r.v[j][i] = t.v[i][j];
    return r;
}

template <int M>
struct kernel;

template <>
struct kernel<2> {
    static constexpr int m = 2, alpha = 4;
    static constexpr table<4, 4> bt{{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}};
    static constexpr table<4, 3> g{{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}};
    static constexpr table<2, 4> at{{{1, 1, 1, 0}, {0, 1, -1, -1}}};
    static constexpr table<4, 2> a = transposed(at);
    static constexpr table<3, 4> gt = transposed(g);
};

template <>
struct kernel<4> {
    static constexpr int m = 4, alpha = 6;
    static constexpr table<6, 6> bt{{{4, 0, -5, 0, 1, 0},
                                     {0, -4, -4, 1, 1, 0},
                                     {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0},
                                     {0, 2, -1, -2, 1, 0},
                                     {0, 4, 0, -5, 0, 1}}};
    static constexpr table<6, 3> g{{{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}}};
    static constexpr table<4, 6> at{{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}};
    static constexpr table<6, 4> a = transposed(at);
    static constexpr table<3, 6> gt = transposed(g);
};

template <int N, class Fn>
[[gnu::always_inline]] inline void constexpr_for(const Fn& fn) {
    [&]<int... I>(std::integer_sequence<int, I...>) { (fn.template operator()<I>(), ...); }(std::make_integer_sequence<int, N>{});
}

// out[l] = sum_k C[I][k] x[k Stride][l] for l < len. Zero coefficients are skipped and ±1 become
// an add or a subtract, so a transform costs its table's nonzeros, and an Inf or NaN reaches only
// the outputs that depend on it.
template <const auto& C, int I, int Stride, class T>
[[gnu::always_inline]] inline void combine(const T (*x)[chunk], T* out, int len) {
    constexpr int cols = std::remove_cvref_t<decltype(C)>::cols;
    for (int l = 0; l < len; ++l) {
        T sum{};
        bool any = false;
        constexpr_for<cols>([&]<int k>() {
            constexpr double c = C.v[I][k];
            if constexpr (c != 0) {
                const T v = x[k * Stride][l];
                const T term = c == 1 ? v : (c == -1 ? -v : static_cast<T>(c) * v);
                sum = any ? sum + term : term;
                any = true;
            }
        });
        out[l] = sum;
    }
}

// z = L x R^T for a tile x of L.cols x R.cols channel vectors (row-major); z is L.rows x R.rows.
template <const auto& L, const auto& R, class T>
[[gnu::always_inline]] inline void sandwich(const T (*x)[chunk], T (*z)[chunk], int len) {
    constexpr int rows = std::remove_cvref_t<decltype(L)>::rows, inner = std::remove_cvref_t<decltype(R)>::cols,
                  cols = std::remove_cvref_t<decltype(R)>::rows;
    T t[rows * inner][chunk];
    constexpr_for<rows>([&]<int i>() {  // t = L x
        for (int j = 0; j < inner; ++j) combine<L, i, inner>(x + j, t[i * inner + j], len);
    });
    for (int i = 0; i < rows; ++i)  // z = t R^T
        constexpr_for<cols>([&]<int j>() { combine<R, j, 1>(t + i * inner, z[i * cols + j], len); });
}

}  // namespace retinanet::cpu::winograd
