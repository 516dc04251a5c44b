// 2-D convolution (cross-correlation, as in every framework) over channels-last activations.
//   forward:  Y = im2col(X) Wt + b     rows: N H_out W_out,  Wt: (k k C_in) x C_out (W transposed)
//   backward: dWt += cols^T dY,  db += column sums of dY,  dX = col2im(dY Wt^T)
// The GEMMs are Eigen's (SIMD), split across the layers' threads. 3x3 stride-1 "same" convolutions
// (most of RetinaNet's work: the heads, the FPN outputs, the ResNet blocks) compute Y, dX and dW
// by Winograd instead (winograd.hpp): F(4x4, 3x3), 4x fewer multiplies, or F(2x2, 3x3) on small
// maps, 2.25x fewer.
#pragma once

#include <array>
#include <vector>

#include "layer.hpp"
#include "model/network_backend.hpp"
#include "winograd.hpp"

namespace retinanet::cpu {

// Which algorithm 3x3 stride-1 "same" convolutions use: the largest m of Winograd F(m x m, 3 x 3)
// for the forward pass and the gradients (max_tile 4 or 2, winograd.hpp), 0 for im2col + GEMM.
// F(4x4) steps down to F(2x2) on maps of fewer than min_tiles of its 4x4 tiles: there its larger
// filter transform and too few tiles for the threads cost more than it saves (a 512-channel
// 16 x 16 map at batch 2, 32 tiles: forward 10.0 against 7.6 ms, backward 29 against 15 ms).
struct winograd_options {
    int max_tile = 4;
    int min_tiles = 96;
};

template <class T>
class conv2d final : public layer<T> {
public:
    // The convolution `spec` states (model::conv_spec: channels, kernel, stride, padding, bias).
    conv2d(const std::string& name, const model::conv_spec& spec, const winograd_options& winograd = {});

    tensor<T> forward(const tensor<T>& x) override;
    tensor<T> backward(const tensor<T>& dy) override;
    void parameters(parameter_list<T>& out) override;
    void clear() override { cache_.clear(); }

    const model::conv_spec& options() const noexcept { return opt_; }
    int output_size(int input) const noexcept { return (input + 2 * opt_.padding - opt_.kernel) / opt_.stride + 1; }

    parameter<T> weight;  // [C_out, C_in, k, k]
    parameter<T> bias;    // [C_out] (empty when options.bias is false)

private:
    struct saved {
        buffer<T> cols;  // (N H_out W_out) x (k k C_in), or the input itself for 1x1 stride 1 and Winograd gradients
        int n, h, w, ho, wo;
    };
    bool pointwise() const noexcept { return opt_.kernel == 1 && opt_.stride == 1 && opt_.padding == 0; }
    bool same_3x3() const noexcept { return opt_.kernel == 3 && opt_.stride == 1 && opt_.padding == 1; }
    int winograd_tile(int n, int h, int w) const noexcept;  // 0: im2col + GEMM
    // The forms of the weights the passes use, kept until the weights change (the heads run the
    // same weights on five levels; inference, on every image). "Change": a bitwise comparison with
    // a copy, which also sees direct writes into weight.value that a version counter would miss.
    void refresh_weight_forms();
    const std::vector<T>& transposed_weight();  // weight [o][c][i][j] -> [(i k + j) C_in + c][o]
    const winograd_filter<T>& filter(int tile, bool adjoint);

    std::string name_;
    model::conv_spec opt_;
    winograd_options winograd_;
    std::vector<T> weights_seen_;  // the weights wt_ and filters_ were computed from
    std::vector<T> wt_;            // empty: not computed since the last change
    std::array<winograd_filter<T>, 2> filters_;  // F(2x2), F(4x4): each the forward's or the adjoint (winograd.hpp)
    std::vector<saved> cache_;
};

}  // namespace retinanet::cpu
