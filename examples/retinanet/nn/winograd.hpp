// 3x3 stride-1 "same" convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", CVPR 2016). Each 2x2 output tile is
//   Y = A^T [ sum_c (G g_oc G^T) ⊙ (B^T d_c B) ] A
// over the 4x4 input tile d_c around it: 16 multiplies per tile and channel pair instead of 36.
// The sum over input channels is 16 GEMMs, one per tile position p = 4 xi + nu:
//   M_p (tiles x out) = V_p (tiles x in) * U_p (in x out),  V = B^T d B,  U = G g G^T.
// Tiles are processed in blocks whose size depends on the channel count only (never the thread
// count), so the bits of the result do not depend on the number of threads.
// Numerics: the transforms only add, subtract and halve, so the error stays within a few ulps of
// im2col + GEMM for the activations and weights of a network (the tests bound it).
#pragma once

#include <vector>

namespace retinanet::nn {

// U[p][in][out] for the 16 tile positions p.
template <class T>
struct winograd_filter {
    std::vector<T> u;
    int in = 0, out = 0;
};

// The filter of a convolution with weights w[out][in][3][3]. With `adjoint`, the filter of its
// input gradient instead, dx = dy ⋆ w': w'[c][o][i][j] = w[o][c][2 - i][2 - j] (in and out
// swapped, the kernel turned by 180 degrees), itself a 3x3 stride-1 "same" convolution.
template <class T>
void winograd_transform_filter(const T* w, int out, int in, bool adjoint, winograd_filter<T>& filter);

// y[n][oy][ox][o] = bias[o] + sum_{c,i,j} w[o][c][i][j] x[n][oy + i - 1][ox + j - 1][c], zero
// outside the image; x is n x h x w x filter.in and y n x h x w x filter.out, channels last.
// bias may be null (no bias).
template <class T>
void winograd_conv3x3(const T* x, int n, int h, int w, const winograd_filter<T>& filter, const T* bias, T* y);

}  // namespace retinanet::nn
