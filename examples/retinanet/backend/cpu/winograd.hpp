// 3x3 stride-1 "same" convolutions by Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", CVPR 2016). Each m x m output tile is
//   Y = A^T [ sum_c (G g_oc G^T) ⊙ (B^T d_c B) ] A
// over the (m + 2) x (m + 2) input tile d_c around it: (m + 2)^2 multiplies per tile and channel
// pair instead of 9 m^2 (m = 2: 16 for 36; m = 4: 36 for 144). The sum over input channels is a
// GEMM per tile position p:
//   M_p (tiles x out) = V_p (tiles x in) * U_p (in x out),  V = B^T d B,  U = G g G^T.
// The input gradient is the same kind of convolution (the adjoint filter), and the weight
// gradient the adjoint of the transforms around the products V_p^T dM_p.
// Tiles are processed in blocks whose size depends on the sizes only (never the thread count), so
// the bits of the result do not depend on the number of threads.
// Numerics: F(2x2) only adds, subtracts and halves, and stays within a few ulps of im2col + GEMM;
// F(4x4)'s larger entries cost about one more decimal digit (the tests bound both).
#pragma once

#include <vector>

namespace retinanet::cpu {

// U[p][in][out] for the (tile + 2)^2 tile positions p.
template <class T>
struct winograd_filter {
    std::vector<T> u;
    int in = 0, out = 0;
    int tile = 2;          // m of F(m x m, 3 x 3): 2 or 4
    bool adjoint = false;  // the filter of the input gradient (winograd_transform_filter)
};

// The filter of a convolution with weights w[out][in][3][3]. With `adjoint`, the filter of its
// input gradient instead, dx = dy ⋆ w': w'[c][o][i][j] = w[o][c][2 - i][2 - j] (in and out
// swapped, the kernel turned by 180 degrees), itself a 3x3 stride-1 "same" convolution.
// tile: m of F(m x m, 3 x 3), 2 or 4 (winograd_transforms.hpp: F(4x4) takes 4x fewer multiplies
// than direct convolution, F(2x2) 2.25x, with a smaller rounding error).
template <class T>
void winograd_transform_filter(const T* w, int out, int in, bool adjoint, int tile, winograd_filter<T>& filter);

// y[n][oy][ox][o] = bias[o] + sum_{c,i,j} w[o][c][i][j] x[n][oy + i - 1][ox + j - 1][c], zero
// outside the image; x is n x h x w x filter.in and y n x h x w x filter.out, channels last.
// bias may be null (no bias).
template <class T>
void winograd_conv3x3(const T* x, int n, int h, int w, const winograd_filter<T>& filter, const T* bias, T* y);

// dw[o][c][i][j] += the gradient of that convolution's weights (w[out][in][3][3]) for its input x
// (n x h x w x in) and output gradient dy (n x h x w x out): dU_p = V_p^T dM_p with dM = A dy A^T
// (the adjoint of Y = A^T M A), then dw = G^T dU G (the adjoint of U = G g G^T). That is 16
// products of in x out over the tiles, where im2col's dW takes 36.
template <class T>
void winograd_weight_gradient(const T* x, const T* dy, int n, int h, int w, int in, int out, int tile, T* dw);

}  // namespace retinanet::cpu
