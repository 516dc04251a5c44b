// The element operations of the CUDA backend's layers: one functor per pass, op(e) for every index e
// of its range, with no order between indices. The CUDA executor runs them as kernels (one thread
// per index); the tests' host loop executor runs the same functors in a loop, which is how the
// tests check them against the CPU backend (backend/cpu/) without a GPU.
//
// Activations are channels-last [N][H][W][C] like cpu::tensor. Sums over many elements go through
// a two-step reduction: a *_partial op writes one double per (output, chunk of rows), a *_finish
// op adds an output's chunks in chunk order, so the result does not depend on the schedule.
#pragma once

#include <cmath>
#include <cstdint>

#include <focal/config.hpp>
#include <focal/core/math.hpp>
#include <focal/retinanet/normalizer.hpp>

#include "backend/element_rules/group_norm.hpp"
#include "backend/element_rules/sgd.hpp"

namespace retinanet::cuda {

using index = std::int64_t;

// torch's ReLU (max(0, v), NaN stays NaN); cpu::relu_value's definition.
FOCAL_HD inline float relu_value(float v) { return v > 0.0f || v != v ? v : 0.0f; }

// ---- convolution: Y = im2col(X) W^T (+ b), W as [C_out][k][k][C_in] ("ohwi") -----------------

// A convolution's geometry, for backends with direct convolutions (cudnn_convolution.cuh): input
// N x H x W x C_in, output N x Ho x Wo x C_out.
struct conv_geometry {
    int n, h, w, cin, cout, kernel, stride, pad, ho, wo;
};

// cols[r][(i k + j) C + c] = x(n, yo s - p + i, xo s - p + j, c), 0 outside; r = (n Ho + yo) Wo + xo.
struct im2col_op {
    const float* x;
    float* cols;
    int h, w, c, k, stride, pad, ho, wo;
    FOCAL_HD void operator()(index e) const {
        const index kkc = static_cast<index>(k) * k * c;
        const index r = e / kkc;
        const int q = static_cast<int>(e % kkc), cc = q % c, tap = q / c, j = tap % k, i = tap / k;
        const int xo = static_cast<int>(r % wo), yo = static_cast<int>((r / wo) % ho);
        const index n = r / (static_cast<index>(wo) * ho);
        const int y = yo * stride - pad + i, xx = xo * stride - pad + j;
        cols[e] = y >= 0 && y < h && xx >= 0 && xx < w ? x[((n * h + y) * w + xx) * c + cc] : 0.0f;
    }
};

// The adjoint of im2col: dx(n, y, x, c) = sum of the dcols entries im2col read it into (a gather:
// one writer per element, no atomics).
struct col2im_op {
    const float* dcols;
    float* dx;
    int h, w, c, k, stride, pad, ho, wo;
    FOCAL_HD void operator()(index e) const {
        const int cc = static_cast<int>(e % c), xx = static_cast<int>((e / c) % w), y = static_cast<int>((e / c / w) % h);
        const index n = e / (static_cast<index>(c) * w * h);
        const index kkc = static_cast<index>(k) * k * c;
        float sum = 0.0f;
        for (int i = 0; i < k; ++i) {
            const int ys = y + pad - i;
            if (ys < 0 || ys % stride != 0 || ys / stride >= ho) continue;
            for (int j = 0; j < k; ++j) {
                const int xs = xx + pad - j;
                if (xs < 0 || xs % stride != 0 || xs / stride >= wo) continue;
                const index r = (n * ho + ys / stride) * wo + xs / stride;
                sum += dcols[r * kkc + (i * k + j) * c + cc];
            }
        }
        dx[e] = sum;
    }
};

// y[r][col] = b[col]: the bias, before a GEMM that adds into y.
struct broadcast_row_op {
    const float* b;
    float* y;
    int cols;
    FOCAL_HD void operator()(index e) const { y[e] = b[e % cols]; }
};

// ---- reductions over the rows of a rows x cols matrix (per channel) -------------------------------

// partial[chunk][col] = sum over the chunk's rows of a[r][col] (times b[r][col] when b is given).
struct column_partial_op {
    const float* a;
    const float* b;  // optional
    index rows, chunk_rows;
    int cols;
    double* partial;
    FOCAL_HD void operator()(index e) const {
        const index chunk = e / cols;
        const int col = static_cast<int>(e % cols);
        const index end = (chunk + 1) * chunk_rows < rows ? (chunk + 1) * chunk_rows : rows;
        double sum = 0.0;
        for (index r = chunk * chunk_rows; r < end; ++r) {
            const index at = r * cols + col;
            sum += b != nullptr ? static_cast<double>(a[at]) * b[at] : static_cast<double>(a[at]);
        }
        partial[e] = sum;
    }
};

// out[col] (+)= sum over chunks of partial[chunk][col].
struct column_finish_op {
    const double* partial;
    index chunks;
    int cols;
    float* out;
    bool accumulate;
    FOCAL_HD void operator()(index col) const {
        double sum = 0.0;
        for (index k = 0; k < chunks; ++k) sum += partial[k * cols + col];
        out[col] = static_cast<float>(accumulate ? out[col] + sum : sum);
    }
};

// ---- GroupNorm (Wu & He 2018): element_rules/group_norm.hpp's rules -------------------------------
// Statistics per (image n, group g), ng = n G + g; per (image, channel) forms, nk = n C + k.

// Per (image, group, chunk of pixels): s1 = sum v, s2 = sum v u with v = a (times gamma_c when
// given, minus centre[ng] when given) and u = b (or v when b is null). Forward: a = x -> sum x;
// then a = x, centre = mean -> sum of centred squares. Backward: a = dy, gamma, b = x hat ->
// sum dy gamma, sum dy gamma x hat. partial: [(n G + g) chunks + chunk][2].
struct group_partial_op {
    const float* a;
    const float* gamma;   // optional
    const float* b;       // optional
    const float* centre;  // optional, per (image, group)
    index hw, chunk_pixels, chunks;
    int c, groups;
    double* partial;
    FOCAL_HD void operator()(index e) const {
        const index chunk = e % chunks, ng = e / chunks;
        const int g = static_cast<int>(ng % groups), cg = c / groups;
        const index n = ng / groups;
        const index end = (chunk + 1) * chunk_pixels < hw ? (chunk + 1) * chunk_pixels : hw;
        double s1 = 0.0, s2 = 0.0;
        for (index p = chunk * chunk_pixels; p < end; ++p)
            for (int k = g * cg; k < (g + 1) * cg; ++k) {
                const index at = (n * hw + p) * c + k;
                float x = a[at];
                if (centre != nullptr) x -= centre[ng];
                const double v = gamma != nullptr ? static_cast<double>(x) * gamma[k] : static_cast<double>(x);
                s1 += v;
                s2 += v * (b != nullptr ? static_cast<double>(b[at]) : v);
            }
        partial[2 * e] = s1;
        partial[2 * e + 1] = s2;
    }
};

// Per (image, group): the two sums over its chunks, in chunk order (group_partial_op's layout).
struct group_sums_finish_op {
    const double* partial;
    index chunks;
    double* sums;  // [ng][2]
    FOCAL_HD void operator()(index ng) const {
        double s1 = 0.0, s2 = 0.0;
        for (index k = 0; k < chunks; ++k) s1 += partial[2 * (ng * chunks + k)], s2 += partial[2 * (ng * chunks + k) + 1];
        sums[2 * ng] = s1;
        sums[2 * ng + 1] = s2;
    }
};

// Per (image, group): mean from the first sum (centred = false), else 1 / std from the centred squares.
struct group_statistic_op {
    const double* sums;
    double count, eps;
    bool centred;
    float* out;
    FOCAL_HD void operator()(index ng) const {
        out[ng] = static_cast<float>(centred ? element_rules::group_inv_std(sums[2 * ng + 1], count, eps)
                                             : element_rules::group_mean(sums[2 * ng], count));
    }
};

// Per (image, channel): the normalization as y = x scale + shift.
struct group_affine_op {
    const float* mean;
    const float* inv_std;
    const float* gamma;
    const float* beta;
    int c, groups;
    float* scale;
    float* shift;
    FOCAL_HD void operator()(index nk) const {
        const int k = static_cast<int>(nk % c);
        const index ng = nk / c * groups + k / (c / groups);
        const auto f = element_rules::group_norm_affine(mean[ng], inv_std[ng], gamma[k], beta[k]);
        scale[nk] = f.scale;
        shift[nk] = f.shift;
    }
};

// y = x scale + shift [ReLU, mask = y > 0], x hat = (x - mean) inv_std (training).
struct group_norm_forward_op {
    const float* x;
    const float* mean;
    const float* inv_std;
    const float* scale;  // per (image, channel)
    const float* shift;
    float* xhat;  // optional (training)
    float* y;
    std::uint8_t* mask;  // ReLU only, optional (training)
    index hw;
    int c, groups;
    bool relu;
    FOCAL_HD void operator()(index e) const {
        const int k = static_cast<int>(e % c);
        const index n = e / c / hw, nk = n * c + k, ng = n * groups + k / (c / groups);
        float v = element_rules::affine(x[e], scale[nk], shift[nk]);
        if (relu) v = relu_value(v);
        if (xhat != nullptr) xhat[e] = element_rules::group_norm_normalized(x[e], mean[ng], inv_std[ng]);
        if (mask != nullptr) mask[e] = v > 0.0f;
        y[e] = v;
    }
};

// Per (image, channel): backward's coefficients a, b, e from the group's sums of g = dy gamma and
// g x hat (group_sums_finish_op over the backward partials).
struct group_gradient_op {
    const double* sums;
    const float* inv_std;
    const float* gamma;
    double count;
    int c, groups;
    element_rules::group_norm_gradient<float>* out;
    FOCAL_HD void operator()(index nk) const {
        const int k = static_cast<int>(nk % c);
        const index ng = nk / c * groups + k / (c / groups);
        out[nk] = element_rules::group_norm_backward<float>(inv_std[ng], gamma[k], sums[2 * ng], sums[2 * ng + 1], count);
    }
};

// dx = a dy + b + e x hat (dy already masked).
struct group_norm_backward_op {
    const float* dy;
    const float* xhat;
    const element_rules::group_norm_gradient<float>* rule;  // per (image, channel)
    float* dx;
    index hw;
    int c;
    FOCAL_HD void operator()(index e) const { dx[e] = rule[e / c / hw * c + e % c].dx(dy[e], xhat[e]); }
};

// ---- FrozenBatchNorm2d, ReLU, sums ----------------------------------------------------------------

// torchvision's FrozenBatchNorm2d: scale = w / sqrt(var + eps), shift = b - mean scale (per channel).
struct frozen_scale_op {
    const float* weight;
    const float* bias;
    const float* running_mean;
    const float* running_var;
    float eps;
    float* scale;
    float* shift;
    FOCAL_HD void operator()(index k) const {
        scale[k] = weight[k] / focal::math::sqrt(running_var[k] + eps);
        shift[k] = bias[k] - running_mean[k] * scale[k];
    }
};

// y = x scale_c + shift_c [ReLU, mask = y > 0].
struct channel_affine_op {
    const float* x;
    const float* scale;
    const float* shift;
    float* y;
    std::uint8_t* mask;  // optional
    int c;
    bool relu;
    FOCAL_HD void operator()(index e) const {
        float v = x[e] * scale[e % c] + shift[e % c];
        if (relu) v = relu_value(v);
        if (mask != nullptr) mask[e] = v > 0.0f;
        y[e] = v;
    }
};

// dx = dy (where mask, when given) times scale_c (when given).
struct masked_scale_op {
    const float* dy;
    const std::uint8_t* mask;  // optional
    const float* scale;        // optional
    float* dx;
    int c;
    FOCAL_HD void operator()(index e) const {
        float v = mask == nullptr || mask[e] ? dy[e] : 0.0f;
        if (scale != nullptr) v *= scale[e % c];
        dx[e] = v;
    }
};

// y = ReLU(a (+ b)), mask = y > 0 (optional): the ReLU layer and the residual join.
struct relu_op {
    const float* a;
    const float* b;  // optional
    float* y;
    std::uint8_t* mask;  // optional
    FOCAL_HD void operator()(index e) const {
        const float v = relu_value(b != nullptr ? a[e] + b[e] : a[e]);
        if (mask != nullptr) mask[e] = v > 0.0f;
        y[e] = v;
    }
};

// a += b.
struct add_op {
    float* a;
    const float* b;
    FOCAL_HD void operator()(index e) const { a[e] += b[e]; }
};

// ---- max-pooling and nearest upsampling -----------------------------------------------------------

// torch's MaxPool2d with -inf padding: the first maximum in row-major window order wins and the
// first NaN propagates (cpu::max_pool2d's rule). argmax: the input pixel y w + x of the maximum.
struct max_pool_op {
    const float* x;
    float* y;
    std::int32_t* argmax;  // optional (training)
    int h, w, c, k, stride, pad, ho, wo;
    FOCAL_HD void operator()(index e) const {
        const int cc = static_cast<int>(e % c), xo = static_cast<int>((e / c) % wo), yo = static_cast<int>((e / c / wo) % ho);
        const index n = e / (static_cast<index>(c) * wo * ho);
        float best = 0.0f;
        std::int32_t arg = -1;
        for (int i = 0; i < k; ++i) {
            const int iy = yo * stride - pad + i;
            if (iy < 0 || iy >= h) continue;
            for (int j = 0; j < k; ++j) {
                const int ix = xo * stride - pad + j;
                if (ix < 0 || ix >= w) continue;
                const float v = x[((n * h + iy) * w + ix) * c + cc];
                if (arg < 0 || ((v > best || v != v) && best == best)) best = v, arg = iy * w + ix;
            }
        }
        y[e] = best;
        if (argmax != nullptr) argmax[e] = arg;
    }
};

// dx(n, y, x, c) = sum of dy over the windows whose maximum was (y, x) (a gather).
struct max_pool_backward_op {
    const float* dy;
    const std::int32_t* argmax;
    float* dx;
    int h, w, c, k, stride, pad, ho, wo;
    FOCAL_HD void operator()(index e) const {
        const int cc = static_cast<int>(e % c), xx = static_cast<int>((e / c) % w), y = static_cast<int>((e / c / w) % h);
        const index n = e / (static_cast<index>(c) * w * h);
        // Windows holding row y: yo s - p <= y <= yo s - p + k - 1.
        const int y_lo = (y + pad - k + 1 + stride - 1 >= 0 ? (y + pad - k + 1 + stride - 1) / stride : 0);
        const int x_lo = (xx + pad - k + 1 + stride - 1 >= 0 ? (xx + pad - k + 1 + stride - 1) / stride : 0);
        const int y_hi = (y + pad) / stride < ho - 1 ? (y + pad) / stride : ho - 1;
        const int x_hi = (xx + pad) / stride < wo - 1 ? (xx + pad) / stride : wo - 1;
        float sum = 0.0f;
        for (int yo = y_lo; yo <= y_hi; ++yo)
            for (int xo = x_lo; xo <= x_hi; ++xo) {
                const index at = ((n * ho + yo) * wo + xo) * c + cc;
                if (argmax[at] == y * w + xx) sum += dy[at];
            }
        dx[e] = sum;
    }
};

// torch's nearest source index: min(floor(dst * (in / out)), in - 1), the scale in float.
FOCAL_HD inline int nearest_source(int dst, int in, int out) {
    const int s = static_cast<int>(static_cast<float>(dst) * (static_cast<float>(in) / static_cast<float>(out)));
    return s < in - 1 ? s : in - 1;
}

// dst (+)= nearest upsampling of src (sh x sw -> dh x dw): the FPN's top-down sum.
struct upsample_op {
    const float* src;
    float* dst;
    int sh, sw, dh, dw, c;
    bool accumulate;
    FOCAL_HD void operator()(index e) const {
        const int cc = static_cast<int>(e % c), x = static_cast<int>((e / c) % dw), y = static_cast<int>((e / c / dw) % dh);
        const index n = e / (static_cast<index>(c) * dw * dh);
        const float v = src[((n * sh + nearest_source(y, sh, dh)) * sw + nearest_source(x, sw, dw)) * c + cc];
        dst[e] = accumulate ? dst[e] + v : v;
    }
};

// dsrc(n, ys, xs, c) = sum of ddst over the pixels that read (ys, xs) (a gather; the source index
// is monotone in the destination index, so they form one rectangle).
struct upsample_backward_op {
    const float* ddst;
    float* dsrc;
    int sh, sw, dh, dw, c;
    FOCAL_HD static int first_reader(int s, int in, int out) {
        int d = static_cast<int>(static_cast<double>(s) * out / in) - 2;
        if (d < 0) d = 0;
        while (d < out && nearest_source(d, in, out) < s) ++d;
        return d;
    }
    FOCAL_HD void operator()(index e) const {
        const int cc = static_cast<int>(e % c), xs = static_cast<int>((e / c) % sw), ys = static_cast<int>((e / c / sw) % sh);
        const index n = e / (static_cast<index>(c) * sw * sh);
        float sum = 0.0f;
        for (int y = first_reader(ys, sh, dh); y < dh && nearest_source(y, sh, dh) == ys; ++y)
            for (int x = first_reader(xs, sw, dw); x < dw && nearest_source(x, sw, dw) == xs; ++x)
                sum += ddst[((n * dh + y) * dw + x) * c + cc];
        dsrc[e] = sum;
    }
};

// ---- head outputs <-> focal's anchor order --------------------------------------------------------

// A level's head output [N][H][W][A P] is block = H W A P values per image, at anchor `offset` of
// the flat [N][total][P] layout. to_flat: head -> flat (forward); otherwise flat -> head (backward).
struct level_copy_op {
    const float* from;
    float* to;
    index block, offset, total;
    int per_anchor;
    bool to_flat;
    FOCAL_HD void operator()(index e) const {
        const index at = (e / block * total + offset) * per_anchor + e % block;
        if (to_flat) to[at] = from[e];
        else to[e] = from[at];
    }
};

// ---- the optimizer (train::sgd's update on one flat parameter buffer) ------------------------------

enum parameter_flags : std::uint8_t { trainable_flag = 1, decay_flag = 2 };

// partial[chunk] = sum of grad^2 over the chunk's trainable elements.
struct squares_partial_op {
    const float* grad;
    const std::uint8_t* flags;
    index size, chunk;
    double* partial;
    FOCAL_HD void operator()(index e) const {
        const index end = (e + 1) * chunk < size ? (e + 1) * chunk : size;
        double sum = 0.0;
        for (index i = e * chunk; i < end; ++i)
            if (flags[i] & trainable_flag) sum += static_cast<double>(grad[i]) * grad[i];
        partial[e] = sum;
    }
};

// norm[0] = sqrt(sum of the partials) (one index).
struct norm_finish_op {
    const double* partial;
    index chunks;
    double* norm;
    FOCAL_HD void operator()(index) const {
        double sum = 0.0;
        for (index k = 0; k < chunks; ++k) sum += partial[k];
        norm[0] = focal::math::sqrt(sum);
    }
};

// train::sgd::step on one element (element_rules/sgd.hpp): a non-finite norm skips the update.
struct sgd_update_op {
    float* value;
    const float* grad;
    float* velocity;
    const std::uint8_t* flags;
    const double* norm;
    float lr, momentum, weight_decay;
    double clip_norm;
    FOCAL_HD void operator()(index e) const {
        const double n = norm[0];
        if (!(flags[e] & trainable_flag) || !element_rules::finite_norm(n)) return;
        const auto s = static_cast<float>(element_rules::clip_scale(n, clip_norm));
        const float wd = (flags[e] & decay_flag) ? weight_decay : 0.0f;
        element_rules::sgd_update(value[e], velocity[e], grad[e], s, wd, momentum, lr);
    }
};

// ---- the loss normalizer, read by focal::cuda's losses on the device ----------------------------

// One index: the batch's normalizers from the per-image positives by focal/retinanet/normalizer.hpp,
// written to out[0, B) (image b's loss is divided by out[b]); batch_ema's running value in *ema.
// This rank's {positives, images} for the ranks' sum (data-parallel training).
struct batch_counts_op {
    const std::int64_t* positives;
    int batch;
    std::int64_t* counts;
    FOCAL_HD void operator()(index) const {
        std::int64_t sum = 0;
        for (int b = 0; b < batch; ++b) sum += positives[b];
        counts[0] = sum;
        counts[1] = batch;
    }
};

// Each image's divisor (focal/retinanet/normalizer.hpp). With `summed` (the ranks' summed {positives,
// images}) the normalizer is the whole batch's over `processes`, as focal::compute_retinanet_loss
// does with retinanet_loss_state::sum_counts.
struct loss_normalizer_op {
    const std::int64_t* positives;
    int batch;
    focal::loss_normalizer kind;
    double momentum;
    double* ema;
    double* out;
    const std::int64_t* summed = nullptr;
    double processes = 1.0;
    FOCAL_HD void operator()(index) const {
        std::int64_t sum = 0;
        for (int b = 0; b < batch; ++b) sum += positives[b];
        std::int64_t images = batch;
        if (summed != nullptr) sum = summed[0], images = summed[1];
        double no_ema = 0.0;  // ema may be null but for batch_ema
        const double shared = focal::batch_normalizer(kind, sum, images, momentum, ema != nullptr ? *ema : no_ema);
        for (int b = 0; b < batch; ++b) out[b] = focal::image_normalizer(kind, positives[b], images, shared) / processes;
    }
};

}  // namespace retinanet::cuda
