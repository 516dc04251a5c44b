// focal/cuda/loss.cuh: the classification and box losses on the GPU, mirroring
// focal/loss/classification_loss.hpp and focal/loss/box_regression_loss.hpp.
//
// Classification (any elementwise policy: sigmoid_focal_loss, binary_cross_entropy):
//   classification_loss(loss, logits [N x K], targets [N x K] dense, reduction, out, ws, stream)
//   classification_loss(loss, logits [N x K], labels [N],  reduction | device_normalizer, out, ws, stream)
//   classification_loss(loss, logits [B x N x K], labels [B x N], reduction | device_normalizer,
//                       batch_out, ws, stream)                                          B images
//   std::size_t classification_loss_workspace_size(N, K) / (B, N, K)
// Box regression (l1_loss, smooth_l1_loss, giou_loss), positives (is_positive_label: label >= 0) only:
//   box_regression_loss(loss, predictions [N x 4], targets [N x 4], labels [N],
//                       reduction | device_normalizer, out, ws, stream)
//   box_regression_loss(loss, predictions [B x N x 4], targets [B x N x 4], labels [B x N], ..., batch_out, ws, stream)
//   std::size_t box_regression_loss_workspace_size(N) / (B, N)
//
// Semantics are the host's, number for number:
//   labels (core/labels.hpp): k >= 0 class k (target 1 in column k), background_label (-1),
//   ignored_label (-2: value 0, gradient 0);
//   reduction::sum / mean / divide_by(n) / none as in reduction.hpp; "mean" with labels counts
//   (N - ignored rows) * K elements (0 when nothing contributes), with dense targets N * K; for boxes
//   it counts the positive rows. The gradient is that of the returned value (scaled by the
//   reduction's factor: in T for classification, grad * T(scale), in double then rounded for boxes,
//   as the host drivers). reduction::none returns the sum and needs out.values (elementwise
//   losses, unscaled); the device box losses reject it (they have no per-box output, where the
//   host's box_loss_output has out.values).
//   out.value (device, one float or double) receives what the host returns; out.grad may be the
//   logits' own memory (each element is read before it is written, by the same thread).
// Batched form (B images, as compute_retinanet_loss calls classification_loss per image):
//   image b's value is sum_b * scale_b, with scale_b from the reduction (the same rule per image;
//   mean counts image b's own elements) or from a device_normalizer: n_b = multiplier *
//   max(minimum, values[b]) read on the device (torchvision's per_image normalizer is
//   {positives, B, 1}, with positives a device array of B counts, e.g. computed by the matcher on
//   the device: no host round trip). out.values[b] (optional) gets each image's value, out.total
//   (optional) their sum added in image order in double.
//   The single-image form accepts a device_normalizer too (values[0] is the normalizer).
//
// Intentional differences from the host (device memory cannot be read before launching, and a
// kernel cannot throw): the contents of targets and labels are not checked. Dense targets are
// used as given (sigmoid_focal_loss treats t > 0.5 as 1); a label < -2 counts as ignored and a
// label >= K as background; giou_loss boxes are not checked for x2 >= x1. A device normalizer that
// is not finite and > 0 gives NaN value and gradients (see normalizer_scale). Everything that can
// be checked on the host (shapes, null data, overlapping outputs, policy parameters, reduction,
// workspace) is checked before anything is launched, with the host's messages, and throws
// focal::error.
//
// Numerics and determinism: policies run in T exactly as on the host (CUDA's expf / log1pf instead
// of the host's, so an element differs by a few ulp); sums follow the fixed order of
// focal/loss/detail/device_loss.hpp (groups of 4 floats summed in float, then double throughout),
// grids depend on the problem size only, and no floating-point atomics are used: the same inputs
// give the same bits, on any GPU and for any layout of the same values.
// Performance: one pass over N x K (each logit read once, each gradient written once, labels read
// per row through L1); 16-byte vector loads and stores where every N x K view involved is
// row-major contiguous and 16-byte aligned, element-wise access for any other strides.
// Launches: mean with labels 3 (+ a memset), otherwise 2; never synchronizes, never allocates.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../core/labels.hpp"
#include "../core/view.hpp"
#include "../loss/detail/device_loss.hpp"
#include "../loss/reduction.hpp"
#include "../loss/value_grad.hpp"
#include "detail/reduce.cuh"
#include "launch.cuh"
#include "runtime.cuh"
#include "view.cuh"
#include "workspace.cuh"

namespace focal::cuda {

// Outputs of the single-image classification driver; null means "not wanted".
template <class T, class V = double>
struct loss_output {
    V* value = nullptr;               // device, 1 value: what the host classification_loss returns
    device_matrix_view<T> grad{};     // d value / d logits, the logits' shape (may be the logits)
    device_matrix_view<T> values{};   // elementwise losses, unscaled (required for reduction::none)
};

// Outputs of the batched drivers (classification and box).
template <class T, class V = double>
struct batch_loss_output {
    V* values = nullptr;           // device, B values: image b's loss (sum_b * scale_b)
    V* total = nullptr;            // device, 1 value: sum over the images (image order, double)
    device_tensor3_view<T> grad{};        // d total / d input, the input's shape (may be the input)
};

// Outputs of the single-image box driver.
template <class T, class V = double>
struct box_loss_output {
    V* value = nullptr;            // device, 1 value: what the host box_regression_loss returns
    device_matrix_view<T> grad{};  // N x 4, 0 on rows that are not positive
};

// A normalizer read on the device: n_b = multiplier * max(minimum, values[b]); the loss is
// sum / n_b. values: device memory, one entry (single image) or B entries (batched), of any
// arithmetic type (an integer count of positives works as it is).
template <class N = double>
struct device_normalizer {
    const N* values = nullptr;
    double multiplier = 1.0;
    double minimum = 0.0;
};

namespace detail {

using focal::detail::element_position;
using focal::detail::group_width;

template <class T>
FOCAL_DEVICE FOCAL_INLINE void load_group(const T* p, T (&v)[group_width<T>]) {
    if constexpr (std::is_same_v<T, float>) {
        const float4 q = *reinterpret_cast<const float4*>(p);
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
        const double2 q = *reinterpret_cast<const double2*>(p);
        v[0] = q.x, v[1] = q.y;
    }
}
template <class T>
FOCAL_DEVICE FOCAL_INLINE void store_group(T* p, const T (&v)[group_width<T>]) {
    if constexpr (std::is_same_v<T, float>) *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    else *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
}

// Dense targets, B x N x K.
template <class T>
struct dense_targets {
    static constexpr bool dense = true;
    device_tensor3_view<const T> t;
};
// Labels, B x N.
template <class L>
struct label_targets {
    static constexpr bool dense = false;
    view<const L, 2, device_space> labels;
};

// One thread handles groups grp, grp + stride, ...: see device_loss.hpp for the order.
// vec: every N x K view is row-major contiguous per image and 16-byte aligned.
template <class Policy, class T, class Targets, class Scale, bool G, class Index>
__global__ void __launch_bounds__(focal::detail::reduce_block)
    classification_kernel(Policy policy_in, device_tensor3_view<const T> x, device_tensor3_view<T> g, device_tensor3_view<T> v,
                          Targets targets, Scale scale, bool vec, index_t blocks_per_image, double* partials) {
    using namespace focal::detail;
    constexpr index_t W = group_width<T>;
    __shared__ double shared[reduce_block];
    const Policy policy = policy_in;
    const index_t b = blockIdx.x / blocks_per_image, block = blockIdx.x % blocks_per_image;
    const index_t cols = x.extent(2), n = x.extent(1) * cols, groups = group_count<T>(n);
    const T s = static_cast<T>(scale.at(b));
    const bool write_values = v.data_handle() != nullptr;
    const T* xb = x.data_handle() + b * x.stride(0);
    T* gb = G ? g.data_handle() + b * g.stride(0) : nullptr;
    T* vb = write_values ? v.data_handle() + b * v.stride(0) : nullptr;
    double acc = 0;
    for (index_t grp = block * reduce_block + threadIdx.x; grp < groups; grp += blocks_per_image * reduce_block) {
        const index_t e0 = grp * W;
        const index_t count = n - e0 < W ? n - e0 : W;
        const bool full = vec && count == W;
        const element_position p = position_of<Index>(e0, cols);
        T xv[W], tv[W], val[W], grad[W];
        element_target<T> et[W];
        // Load every logit (and target) of the group before any store: grad may alias x.
        if (full) {
            load_group(xb + e0, xv);
            if constexpr (Targets::dense) load_group(targets.t.data_handle() + b * targets.t.stride(0) + e0, tv);
        } else {
            element_position q = p;
#pragma unroll
            for (index_t j = 0; j < W; ++j) {
                if (j < count) {
                    xv[j] = x(b, q.row, q.col);
                    if constexpr (Targets::dense) tv[j] = targets.t(b, q.row, q.col);
                    next_position(q, cols);
                }
            }
        }
        if constexpr (Targets::dense) {
#pragma unroll
            for (index_t j = 0; j < W; ++j) et[j] = {tv[j], false};
        } else {
            element_position q = p;
            std::int64_t label = static_cast<std::int64_t>(targets.labels(b, q.row));
#pragma unroll
            for (index_t j = 0; j < W; ++j) {
                if (j < count) {
                    if (j > 0 && q.col == 0) label = static_cast<std::int64_t>(targets.labels(b, q.row));
                    et[j] = label_target<T>(label, q.col);
                    next_position(q, cols);
                }
            }
        }
#pragma unroll
        for (index_t j = 0; j < W; ++j) {
            if (j < count) {
                const value_grad<T> r = element_loss(policy, xv[j], et[j], s);
                val[j] = r.value;
                grad[j] = r.grad;
            }
        }
        acc += static_cast<double>(group_sum(val, count));
        if (full) {
            if constexpr (G) store_group(gb + e0, grad);
            if (write_values) store_group(vb + e0, val);
        } else if (G || write_values) {
            element_position q = p;
#pragma unroll
            for (index_t j = 0; j < W; ++j) {
                if (j < count) {
                    if constexpr (G) g(b, q.row, q.col) = grad[j];
                    if (write_values) v(b, q.row, q.col) = val[j];
                    next_position(q, cols);
                }
            }
        }
    }
    const double partial = block_sum(acc, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = partial;
}

template <class Policy, class T, class Label, class Scale, bool G>
__global__ void __launch_bounds__(focal::detail::reduce_block)
    box_kernel(Policy policy_in, device_tensor3_view<const T> pred, device_tensor3_view<const T> target,
               view<const Label, 2, device_space> labels, device_tensor3_view<T> grad, Scale scale, index_t blocks_per_image,
               double* partials) {
    using namespace focal::detail;
    __shared__ double shared[reduce_block];
    const Policy policy = policy_in;
    const index_t b = blockIdx.x / blocks_per_image, block = blockIdx.x % blocks_per_image;
    const index_t rows = pred.extent(1);
    const double s = scale.at(b);
    double acc = 0;
    for (index_t i = block * reduce_block + threadIdx.x; i < rows; i += blocks_per_image * reduce_block) {
        if (is_positive_label(static_cast<std::int64_t>(labels(b, i)))) {
            box4<T> p{}, t{};
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                p[c] = pred(b, i, c);
                t[c] = target(b, i, c);
            }
            const box_value_grad<T> r = box_row_loss(policy, p, t, s);
            acc += static_cast<double>(r.value);
            if constexpr (G) {
#pragma unroll
                for (int c = 0; c < 4; ++c) grad(b, i, c) = r.grad[c];
            }
        } else if constexpr (G) {
#pragma unroll
            for (int c = 0; c < 4; ++c) grad(b, i, c) = T(0);
        }
    }
    const double partial = block_sum(acc, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = partial;
}

// ---- host side ---------------------------------------------------------------------------------

struct loss_plan {
    index_t batch = 0, blocks_per_image = 1;
    std::size_t partials = 0, counts = 0, bytes = 0;
};

// Sized for double (2 per group), which needs at least as many blocks as float: one size serves both.
inline loss_plan make_loss_plan(index_t batch, index_t blocks_per_image) {
    loss_plan p;
    workspace_plan w;
    p.batch = batch;
    p.blocks_per_image = blocks_per_image;
    p.partials = w.reserve<double>(batch * blocks_per_image);
    p.counts = w.reserve<unsigned long long>(batch);
    p.bytes = w.bytes();
    return p;
}
inline loss_plan classification_plan(index_t batch, index_t rows, index_t cols) {
    return make_loss_plan(batch, focal::detail::loss_blocks<double>(rows * cols));
}
inline loss_plan box_plan(index_t batch, index_t rows) { return make_loss_plan(batch, focal::detail::box_blocks(rows)); }

inline void require_sizes(index_t batch, index_t rows, index_t cols, const char* where) {
    focal::detail::require(batch >= 0 && rows >= 0 && cols >= 0, where, "shape", "non-negative extents",
                           std::to_string(batch) + " x " + std::to_string(rows) + " x " + std::to_string(cols));
    focal::detail::require(rows == 0 || cols == 0 || rows <= std::numeric_limits<index_t>::max() / cols, where,
                           "shape", "rows * cols representable in focal::index_t", rows, " x ", cols);
    // The largest grid launched (loss kernel or label count) has batch x blocks <= 2^31 - 1 blocks.
    const index_t blocks = std::max(focal::detail::loss_blocks<double>(rows * cols), rows / focal::detail::reduce_block + 1);
    focal::detail::require(batch <= std::numeric_limits<int>::max() / blocks, where, "batch",
                           "small enough for one grid (batch x blocks per image < 2^31)", batch);
}

template <class T>
device_tensor3_view<T> as_batch(const device_matrix_view<T>& m) {
    return device_tensor3_view<T>(m.data_handle(), {1, m.extent(0), m.extent(1)}, {0, m.stride(0), m.stride(1)});
}
// An optional output: a null view stays null (not requested).
template <class T>
device_tensor3_view<T> as_batch_output(const device_matrix_view<T>& m) {
    return m.is_null() ? device_tensor3_view<T>{} : as_batch(m);
}
template <class L>
view<L, 2, device_space> as_batch(const device_vector_view<L>& v) {
    return view<L, 2, device_space>(v.data_handle(), {1, v.extent(0)}, {0, v.stride(0)});
}

// An output that shares memory with an input must be that input's own view: each element is then
// read and written by the same thread. Any other overlap (another layout, a shifted start) would
// have one thread overwrite what another still reads: a race, not just a wrong answer.
template <class T, class U>
void require_same_or_disjoint(const device_tensor3_view<T>& out, const device_tensor3_view<U>& in, const char* where,
                              const char* what, const char* in_name) {
    static_assert(sizeof(T) == sizeof(U), "compared views hold the same value type");
    if (out.data_handle() == nullptr || in.data_handle() == nullptr || out.size() == 0 || in.size() == 0) return;
    bool same = static_cast<const void*>(out.data_handle()) == static_cast<const void*>(in.data_handle());
    for (std::size_t r = 0; r < 3; ++r)
        same = same && out.extent(r) == in.extent(r) && (out.extent(r) <= 1 || out.stride(r) == in.stride(r));
    if (same) return;
    // Byte ranges [lo, hi) each view touches.
    const auto range = [](const auto& v) {
        std::intptr_t lo = 0, hi = 0;
        for (std::size_t r = 0; r < 3; ++r) {
            const auto step = static_cast<std::intptr_t>((v.extent(r) - 1) * v.stride(r)) * static_cast<std::intptr_t>(sizeof(T));
            (step < 0 ? lo : hi) += step;
        }
        const auto base = static_cast<std::intptr_t>(reinterpret_cast<std::uintptr_t>(v.data_handle()));
        return std::pair<std::intptr_t, std::intptr_t>{base + lo, base + hi + static_cast<std::intptr_t>(sizeof(T))};
    };
    const auto a = range(out), b = range(in);
    focal::detail::require(a.second <= b.first || b.second <= a.first, where, what,
                           std::string("the memory of ") + in_name + " with its exact layout, or memory disjoint from it",
                           "a view that partly overlaps " + std::string(in_name));
}

// Every image row-major contiguous and 16-byte aligned (so groups of 16 bytes load as one vector).
template <class T>
bool vector_ready(const device_tensor3_view<T>& v) {
    if (v.data_handle() == nullptr) return true;  // not requested
    const bool contiguous = (v.extent(2) <= 1 || v.stride(2) == 1) && (v.extent(1) <= 1 || v.stride(1) == v.extent(2)) &&
                            (v.extent(2) != 1 || v.extent(1) <= 1 || v.stride(1) == 1);
    const bool aligned = reinterpret_cast<std::uintptr_t>(v.data_handle()) % 16 == 0 &&
                         (v.extent(0) <= 1 || (v.stride(0) * static_cast<index_t>(sizeof(T))) % 16 == 0);
    return contiguous && aligned;
}

template <class V>
void check_value_type() {
    static_assert(std::is_same_v<V, float> || std::is_same_v<V, double>, "the loss value is written as float or double");
}

template <class Policy, class T, class Targets, class Scale, class V>
void run_classification(const char* where, const Policy& policy, const device_tensor3_view<const T>& x,
                        const device_tensor3_view<T>& g, const device_tensor3_view<T>& v, const Targets& targets, const Scale& scale,
                        const loss_plan& plan, const workspace& ws, V* values, V* total, cudaStream_t stream) {
    const index_t n = x.extent(1) * x.extent(2);
    // Only the views that are read or written decide the vector path.
    bool vec = vector_ready(x) && vector_ready(g) && vector_ready(v);
    if constexpr (Targets::dense) vec = vec && vector_ready(targets.t);
    double* partials = workspace_at<double>(ws, plan.partials);
    const index_t bpi = focal::detail::loss_blocks<T>(n);
    const auto grid = static_cast<unsigned>(plan.batch * bpi);
    const bool narrow = n <= static_cast<index_t>(std::numeric_limits<std::uint32_t>::max());
    const bool want_grad = !g.is_null() && g.data_handle() != nullptr;
    if (want_grad) {
        if (narrow) launch(where, classification_kernel<Policy, T, Targets, Scale, true, std::uint32_t>, grid, focal::detail::reduce_block, 0, stream, policy, x, g, v, targets, scale, vec, bpi, partials);
        else launch(where, classification_kernel<Policy, T, Targets, Scale, true, index_t>, grid, focal::detail::reduce_block, 0, stream, policy, x, g, v, targets, scale, vec, bpi, partials);
    } else {
        if (narrow) launch(where, classification_kernel<Policy, T, Targets, Scale, false, std::uint32_t>, grid, focal::detail::reduce_block, 0, stream, policy, x, g, v, targets, scale, vec, bpi, partials);
        else launch(where, classification_kernel<Policy, T, Targets, Scale, false, index_t>, grid, focal::detail::reduce_block, 0, stream, policy, x, g, v, targets, scale, vec, bpi, partials);
    }
    if (values != nullptr || total != nullptr)
        launch(where, finalize_kernel<Scale, V>, 1, focal::detail::reduce_block, 0, stream, partials, bpi, plan.batch, scale, values, total);
}

template <class Label>
void launch_count(const char* where, const view<const Label, 2, device_space>& labels, bool positives,
                  const loss_plan& plan, const workspace& ws, cudaStream_t stream) {
    auto* counts = workspace_at<unsigned long long>(ws, plan.counts);
    if (plan.batch == 0) return;
    FOCAL_CUDA_CHECK(cudaMemsetAsync(counts, 0, static_cast<std::size_t>(plan.batch) * sizeof(unsigned long long), stream));
    const auto blocks = static_cast<index_t>(grid_size(labels.extent(1), focal::detail::reduce_block, 8));
    const auto grid = static_cast<unsigned>(plan.batch * blocks);
    if (positives) launch(where, count_kernel<Label, is_positive>, grid, focal::detail::reduce_block, 0, stream, labels, blocks, is_positive{}, counts);
    else launch(where, count_kernel<Label, is_ignored>, grid, focal::detail::reduce_block, 0, stream, labels, blocks, is_ignored{}, counts);
}

template <class N>
void check_normalizer(const device_normalizer<N>& n, const char* where) {
    static_assert(std::is_arithmetic_v<N>, "device_normalizer values are numbers");
    focal::detail::require(n.values != nullptr, where, "normalizer.values", "a device pointer", "nullptr");
    focal::detail::require(std::isfinite(n.multiplier) && n.multiplier > 0, where, "normalizer.multiplier", "finite and > 0",
                           n.multiplier);
    focal::detail::require(std::isfinite(n.minimum), where, "normalizer.minimum", "finite", n.minimum);
}

// Shared checks of the classification drivers (logits B x N x K, outputs).
template <class Policy, class T>
void check_classification(const char* where, const Policy& policy, const device_tensor3_view<const T>& x,
                          const device_tensor3_view<T>& g, const device_tensor3_view<T>& v) {
    focal::detail::validate_policy(policy, where);
    focal::detail::require_valid_extents(x, where, "logits");
    focal::detail::require_data(x, where, "logits");
    if (!g.is_null()) {
        focal::detail::require_same_shape(g, x, where, "out.grad", "logits");
        focal::detail::require_disjoint_images(g, where, "out.grad");
    }
    if (!v.is_null()) {
        focal::detail::require_same_shape(v, x, where, "out.values", "logits");
        focal::detail::require_disjoint_images(v, where, "out.values");
    }
    require_same_or_disjoint(g, x, where, "out.grad", "logits");
    require_same_or_disjoint(v, x, where, "out.values", "logits");
    require_same_or_disjoint(v, g, where, "out.values", "out.grad");
    require_sizes(x.extent(0), x.extent(1), x.extent(2), where);
}

template <class T, class Label>
void check_labels(const char* where, const device_tensor3_view<const T>& x, const view<const Label, 2, device_space>& labels) {
    focal::detail::require(labels.extent(0) == x.extent(0) && labels.extent(1) == x.extent(1), where,
                           "labels (one per logits row)",
                           "of shape [" + std::to_string(x.extent(0)) + " x " + std::to_string(x.extent(1)) + "]",
                           focal::detail::shape_string(labels));
    focal::detail::require_data(labels, where, "labels");
}

// Labels, reduction or device normalizer: the common body of the single and batched forms.
template <class Loss, class T, class Label, class How, class V>
void classification_labels(const char* where, const Loss& loss, const device_tensor3_view<const T>& x,
                           const view<const Label, 2, device_space>& labels, const How& how, const device_tensor3_view<T>& g,
                           const device_tensor3_view<T>& v, V* values, V* total, bool batched, const workspace& ws,
                           cudaStream_t stream) {
    check_value_type<V>();
    check_classification(where, loss, x, g, v);
    check_labels(where, x, labels);
    const index_t rows = x.extent(1), cols = x.extent(2);
    if constexpr (std::is_same_v<How, reduction>) {
        validate(how, where);
        if (batched)
            focal::detail::require(how.how != reduction::kind::none, where, "reduction",
                                   "sum, mean or divide_by (the batched form has no elementwise output)", "reduction::none");
        else
            focal::detail::require(how.how != reduction::kind::none || !v.is_null() || x.size() == 0, where, "out.values",
                                   "given for reduction::none (it receives the elementwise losses)", "a null view");
        if (how.how != reduction::kind::mean) focal::detail::require_representable_scale<T>(how.scale(0.0), where);
    } else {
        check_normalizer(how, where);
    }
    const loss_plan plan = classification_plan(x.extent(0), rows, cols);
    require_workspace(ws, plan.bytes, where);
    const label_targets<Label> targets{labels};
    if constexpr (std::is_same_v<How, reduction>) {
        if (how.how == reduction::kind::mean) {
            launch_count(where, labels, false, plan, ws, stream);
            const focal::detail::count_scale scale{how, workspace_at<unsigned long long>(ws, plan.counts), rows, cols, true};
            run_classification(where, loss, x, g, v, targets, scale, plan, ws, values, total, stream);
        } else {
            const focal::detail::constant_scale scale{how.scale(0.0)};
            run_classification(where, loss, x, g, v, targets, scale, plan, ws, values, total, stream);
        }
    } else {
        using N = std::remove_cv_t<std::remove_pointer_t<decltype(how.values)>>;
        const focal::detail::normalizer_scale<N, T> scale{how.values, how.multiplier, how.minimum, batched};
        run_classification(where, loss, x, g, v, targets, scale, plan, ws, values, total, stream);
    }
}

// Box losses: the common body of the single and batched forms.
template <class Loss, class T, class Label, class How, class V>
void box_labels(const char* where, const Loss& loss, const device_tensor3_view<const T>& pred, const device_tensor3_view<const T>& target,
                const view<const Label, 2, device_space>& labels, const How& how, const device_tensor3_view<T>& grad,
                V* values, V* total, bool batched, const workspace& ws, cudaStream_t stream) {
    check_value_type<V>();
    focal::detail::validate_policy(loss, where);
    focal::detail::require_valid_extents(pred, where, "predictions");
    focal::detail::require_extent(pred, 2, 4, where, "predictions");
    focal::detail::require_same_shape(target, pred, where, "targets", "predictions");
    focal::detail::require(labels.extent(0) == pred.extent(0) && labels.extent(1) == pred.extent(1), where,
                           "labels (one per predictions row)",
                           "of shape [" + std::to_string(pred.extent(0)) + " x " + std::to_string(pred.extent(1)) + "]",
                           focal::detail::shape_string(labels));
    if constexpr (std::is_same_v<How, reduction>) {
        validate(how, where);
        focal::detail::require(how.how != reduction::kind::none, where, "reduction",
                               "sum, mean or divide_by (box losses are per box)", "reduction::none");
        if (how.how != reduction::kind::mean) focal::detail::require_representable_scale<T>(how.scale(0.0), where);
    } else {
        check_normalizer(how, where);
    }
    focal::detail::require_data(pred, where, "predictions");
    focal::detail::require_data(target, where, "targets");
    focal::detail::require_data(labels, where, "labels");
    if (!grad.is_null()) {
        focal::detail::require_same_shape(grad, pred, where, "out.grad", "predictions");
        focal::detail::require_disjoint_images(grad, where, "out.grad");
        require_same_or_disjoint(grad, pred, where, "out.grad", "predictions");
        require_same_or_disjoint(grad, target, where, "out.grad", "targets");
    }
    require_sizes(pred.extent(0), pred.extent(1), 4, where);
    const loss_plan plan = box_plan(pred.extent(0), pred.extent(1));
    require_workspace(ws, plan.bytes, where);
    double* partials = workspace_at<double>(ws, plan.partials);
    const auto grid = static_cast<unsigned>(plan.batch * plan.blocks_per_image);
    const index_t bpi = plan.blocks_per_image;
    auto run = [&](const auto& scale) {
        using Scale = std::remove_cvref_t<decltype(scale)>;
        if (!grad.is_null())
            launch(where, box_kernel<Loss, T, Label, Scale, true>, grid, focal::detail::reduce_block, 0, stream, loss, pred, target, labels, grad, scale, bpi, partials);
        else
            launch(where, box_kernel<Loss, T, Label, Scale, false>, grid, focal::detail::reduce_block, 0, stream, loss, pred, target, labels, grad, scale, bpi, partials);
        if (values != nullptr || total != nullptr)
            launch(where, finalize_kernel<Scale, V>, 1, focal::detail::reduce_block, 0, stream, partials, bpi, plan.batch, scale, values, total);
    };
    if constexpr (std::is_same_v<How, reduction>) {
        if (how.how == reduction::kind::mean) {
            launch_count(where, labels, true, plan, ws, stream);
            run(focal::detail::count_scale{how, workspace_at<unsigned long long>(ws, plan.counts), 0, 0, false});
        } else {
            run(focal::detail::constant_scale{how.scale(0.0)});
        }
    } else {
        using N = std::remove_cv_t<std::remove_pointer_t<decltype(how.values)>>;
        run(focal::detail::normalizer_scale<N, T>{how.values, how.multiplier, how.minimum, batched});
    }
}

// What a labels driver accepts as its reduction: a host reduction or a device normalizer.
template <class How>
inline constexpr bool is_reduction_arg_v = std::is_same_v<How, reduction>;
template <class N>
inline constexpr bool is_reduction_arg_v<device_normalizer<N>> = true;

}  // namespace detail

// ---- workspace sizes ----------------------------------------------------------------------------

inline std::size_t classification_loss_workspace_size(index_t batch, index_t rows, index_t cols) {
    detail::require_sizes(batch, rows, cols, "focal::cuda::classification_loss_workspace_size");
    return detail::classification_plan(batch, rows, cols).bytes;
}
inline std::size_t classification_loss_workspace_size(index_t rows, index_t cols) {
    return classification_loss_workspace_size(1, rows, cols);
}
inline std::size_t box_regression_loss_workspace_size(index_t batch, index_t rows) {
    detail::require_sizes(batch, rows, 4, "focal::cuda::box_regression_loss_workspace_size");
    return detail::box_plan(batch, rows).bytes;
}
inline std::size_t box_regression_loss_workspace_size(index_t rows) { return box_regression_loss_workspace_size(1, rows); }

// ---- classification -----------------------------------------------------------------------------

// Dense targets [N x K] (the logits' shape). out.value receives the host's return value.
template <class Loss, class TX, class TT, class V = double>
    requires std::floating_point<std::remove_const_t<TX>> && std::same_as<std::remove_const_t<TX>, std::remove_const_t<TT>> &&
             elementwise_loss<Loss, std::remove_const_t<TX>>
void classification_loss(const Loss& loss, device_matrix_view<TX> logits, device_matrix_view<TT> targets, reduction r,
                         loss_output<std::remove_const_t<TX>, V> out, const workspace& ws, cudaStream_t stream) {
    using T = std::remove_const_t<TX>;
    constexpr const char* where = "focal::cuda::classification_loss";
    detail::check_value_type<V>();
    const device_tensor3_view<const T> x = detail::as_batch(device_matrix_view<const T>(logits));
    const device_tensor3_view<T> g = detail::as_batch_output(out.grad), v = detail::as_batch_output(out.values);
    detail::check_classification(where, loss, x, g, v);
    validate(r, where);
    focal::detail::require(r.how != reduction::kind::none || !out.values.is_null() || logits.empty(), where, "out.values",
                           "given for reduction::none (it receives the elementwise losses)", "a null view");
    const device_matrix_view<const T> t = targets;
    focal::detail::require_same_shape(t, device_matrix_view<const T>(logits), where, "targets", "logits");
    focal::detail::require_data(t, where, "targets");
    detail::require_same_or_disjoint(g, detail::as_batch(t), where, "out.grad", "targets");
    detail::require_same_or_disjoint(v, detail::as_batch(t), where, "out.values", "targets");
    const double scale = r.scale(static_cast<double>(logits.size()));
    focal::detail::require_representable_scale<T>(scale, where);
    const detail::loss_plan plan = detail::classification_plan(1, logits.extent(0), logits.extent(1));
    detail::require_workspace(ws, plan.bytes, where);
    detail::run_classification(where, loss, x, g, v, detail::dense_targets<T>{detail::as_batch(t)},
                               focal::detail::constant_scale{scale}, plan, ws, out.value, static_cast<V*>(nullptr), stream);
}

// Labels [N]: >= 0 class, background_label (-1), ignored_label (-2). How: a reduction, or a device_normalizer
// (values[0] is the normalizer).
template <class Loss, class TX, class Label, class How, class V = double>
    requires std::floating_point<std::remove_const_t<TX>> && std::integral<std::remove_const_t<Label>> &&
             elementwise_loss<Loss, std::remove_const_t<TX>> && detail::is_reduction_arg_v<How>
void classification_loss(const Loss& loss, device_matrix_view<TX> logits, device_vector_view<Label> labels, const How& how,
                         loss_output<std::remove_const_t<TX>, V> out, const workspace& ws, cudaStream_t stream) {
    using T = std::remove_const_t<TX>;
    using L = std::remove_const_t<Label>;
    detail::classification_labels("focal::cuda::classification_loss", loss, detail::as_batch(device_matrix_view<const T>(logits)),
                                  detail::as_batch(device_vector_view<const L>(labels)), how, detail::as_batch_output(out.grad),
                                  detail::as_batch_output(out.values), out.value, static_cast<V*>(nullptr), false, ws, stream);
}

// B images: logits [B x N x K], labels [B x N]. How: a reduction applied to each image, or a
// device_normalizer with one value per image. out.values[b] = image b's loss, out.total = their sum.
template <class Loss, class TX, class Label, class How, class V = double>
    requires std::floating_point<std::remove_const_t<TX>> && std::integral<std::remove_const_t<Label>> &&
             elementwise_loss<Loss, std::remove_const_t<TX>> && detail::is_reduction_arg_v<How>
void classification_loss(const Loss& loss, device_tensor3_view<TX> logits, device_matrix_view<Label> labels, const How& how,
                         batch_loss_output<std::remove_const_t<TX>, V> out, const workspace& ws, cudaStream_t stream) {
    using T = std::remove_const_t<TX>;
    using L = std::remove_const_t<Label>;
    detail::classification_labels("focal::cuda::classification_loss", loss, device_tensor3_view<const T>(logits),
                                  view<const L, 2, device_space>(labels), how, out.grad, device_tensor3_view<T>{}, out.values,
                                  out.total, true, ws, stream);
}

// ---- box regression -----------------------------------------------------------------------------

// predictions, targets [N x 4]; labels [N] (rows with label >= 0 are positive).
template <class Loss, class TP, class TT, class Label, class How, class V = double>
    requires std::floating_point<std::remove_const_t<TP>> && std::same_as<std::remove_const_t<TP>, std::remove_const_t<TT>> &&
             std::integral<std::remove_const_t<Label>> && box_loss<Loss, std::remove_const_t<TP>> && detail::is_reduction_arg_v<How>
void box_regression_loss(const Loss& loss, device_matrix_view<TP> predictions, device_matrix_view<TT> targets,
                         device_vector_view<Label> labels, const How& how, box_loss_output<std::remove_const_t<TP>, V> out,
                         const workspace& ws, cudaStream_t stream) {
    using T = std::remove_const_t<TP>;
    using L = std::remove_const_t<Label>;
    detail::box_labels("focal::cuda::box_regression_loss", loss, detail::as_batch(device_matrix_view<const T>(predictions)),
                       detail::as_batch(device_matrix_view<const T>(targets)), detail::as_batch(device_vector_view<const L>(labels)),
                       how, detail::as_batch_output(out.grad), out.value, static_cast<V*>(nullptr), false, ws, stream);
}

// B images: predictions, targets [B x N x 4], labels [B x N]; out as the batched classification.
template <class Loss, class TP, class TT, class Label, class How, class V = double>
    requires std::floating_point<std::remove_const_t<TP>> && std::same_as<std::remove_const_t<TP>, std::remove_const_t<TT>> &&
             std::integral<std::remove_const_t<Label>> && box_loss<Loss, std::remove_const_t<TP>> && detail::is_reduction_arg_v<How>
void box_regression_loss(const Loss& loss, device_tensor3_view<TP> predictions, device_tensor3_view<TT> targets,
                         device_matrix_view<Label> labels, const How& how, batch_loss_output<std::remove_const_t<TP>, V> out,
                         const workspace& ws, cudaStream_t stream) {
    using T = std::remove_const_t<TP>;
    using L = std::remove_const_t<Label>;
    detail::box_labels("focal::cuda::box_regression_loss", loss, device_tensor3_view<const T>(predictions),
                       device_tensor3_view<const T>(targets), view<const L, 2, device_space>(labels), how, out.grad, out.values,
                       out.total, true, ws, stream);
}

}  // namespace focal::cuda
