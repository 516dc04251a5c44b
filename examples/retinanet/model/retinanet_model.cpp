#include "retinanet_model.hpp"

#include <cmath>

#include <focal/anchor/generate.hpp>
#include <focal/core/error.hpp>

namespace retinanet::model {
namespace {

// Head output [N][H][W][A C] <-> flat[n][offset + (y W + x) A + a][c]: per image and level one
// contiguous block of H W A C values (channels-last is focal's anchor order already).
template <class T, bool Scatter>
void reorder(std::conditional_t<Scatter, T*, const T*> head, std::conditional_t<Scatter, const T*, T*> flat, std::size_t block,
             int n_images, std::ptrdiff_t offset, std::ptrdiff_t total_anchors, int per_anchor) {
    for (int n = 0; n < n_images; ++n) {
        const std::size_t at = (static_cast<std::size_t>(n) * total_anchors + offset) * per_anchor;
        if constexpr (Scatter) std::copy(flat + at, flat + at + block, head + n * block);
        else std::copy(head + n * block, head + (n + 1) * block, flat + at);
    }
}

}  // namespace

template <class T>
retinanet_model<T>::retinanet_model(const model_config& config)
    : config_(config),
      backbone_(config),
      fpn_(config),
      cls_head_(config, "head.classification_head", "cls_logits", config.num_classes),
      box_head_(config, "head.regression_head", "bbox_reg", 4) {
    focal::detail::require(config.num_classes > 0, "retinanet_model", "config.num_classes", "positive", config.num_classes);
    focal::detail::require(config.anchors.levels.size() == 5, "retinanet_model", "config.anchors.levels", "five levels (P3..P7)",
                           config.anchors.levels.size());
    for (const auto& level : config.anchors.levels)
        focal::detail::require(focal::anchors_per_cell(level) == config.anchors_per_cell(), "retinanet_model", "config.anchors",
                               "the same anchors per cell on every level (the heads are shared)", focal::anchors_per_cell(level));
    backbone_.parameters(parameters_);
    fpn_.parameters(parameters_);
    cls_head_.parameters(parameters_);
    box_head_.parameters(parameters_);
    initialize(0);
}

template <class T>
void retinanet_model<T>::initialize(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    backbone_.initialize(config_, rng);
    fpn_.initialize(rng);
    const double pi = config_.prior_probability;
    cls_head_.initialize(rng, -std::log((1.0 - pi) / pi));
    box_head_.initialize(rng, 0.0);
    zero_grad();
}

template <class T>
void retinanet_model<T>::zero_grad() {
    for (auto* p : parameters_) std::fill(p->grad.begin(), p->grad.end(), T(0));
}

template <class T>
void retinanet_model<T>::clear() {
    backbone_.clear();
    fpn_.clear();
    cls_head_.clear();
    box_head_.clear();
}

template <class T>
head_outputs<T> retinanet_model<T>::forward(const cpu::tensor<T>& images) {
    cpu::keep_freed_memory();
    focal::detail::require(images.c == 3 && images.n > 0, "retinanet_model::forward", "images", "[3 x N x H x W] with N > 0",
                           focal::detail::concat("[", images.c, " x ", images.n, " x ", images.h, " x ", images.w, "]"));
    const auto c = backbone_.forward(images);
    const auto p = fpn_.forward(c);
    head_outputs<T> out;
    out.batch = images.n;
    out.classes = config_.num_classes;
    const int a = config_.anchors_per_cell();
    for (const auto& level : p) {
        out.grids.push_back({level.h, level.w});
        out.anchors += static_cast<std::ptrdiff_t>(level.h) * level.w * a;
    }
    out.cls_logits.resize(static_cast<std::size_t>(out.batch) * out.anchors * out.classes);
    out.bbox_regression.resize(static_cast<std::size_t>(out.batch) * out.anchors * 4);
    std::ptrdiff_t offset = 0;
    for (const auto& level : p) {  // P3 first: backward unwinds the shared heads from P7
        const auto cls = cls_head_.forward(level);
        const std::size_t cells = static_cast<std::size_t>(level.h) * level.w * a;
        reorder<T, false>(cls.data.data(), out.cls_logits.data(), cells * out.classes, level.n, offset, out.anchors, out.classes);
        const auto box = box_head_.forward(level);
        reorder<T, false>(box.data.data(), out.bbox_regression.data(), cells * 4, level.n, offset, out.anchors, 4);
        offset += static_cast<std::ptrdiff_t>(cells);
    }
    grids_ = out.grids;
    batch_ = out.batch;
    return out;
}

template <class T>
void retinanet_model<T>::backward(const std::vector<T>& d_cls, const std::vector<T>& d_box) {
    const int a = config_.anchors_per_cell(), k = config_.num_classes;
    std::ptrdiff_t total = 0;
    for (const auto& g : grids_) total += g.height * g.width * a;
    focal::detail::require(!grids_.empty() && d_cls.size() == static_cast<std::size_t>(batch_ * total * k) &&
                               d_box.size() == static_cast<std::size_t>(batch_ * total * 4),
                           "retinanet_model::backward", "gradients", "shaped as the last forward's outputs",
                           focal::detail::concat(d_cls.size(), " and ", d_box.size(), " values"));
    std::array<cpu::tensor<T>, 5> dp;
    std::ptrdiff_t offset = total;
    for (int l = 4; l >= 0; --l) {
        const auto g = grids_[l];
        const int h = static_cast<int>(g.height), w = static_cast<int>(g.width);
        offset -= static_cast<std::ptrdiff_t>(h) * w * a;
        cpu::tensor<T> dbox(4 * a, batch_, h, w, cpu::uninitialized), dcls(k * a, batch_, h, w, cpu::uninitialized);
        const std::size_t cells = static_cast<std::size_t>(h) * w * a;
        reorder<T, true>(dbox.data.data(), d_box.data(), cells * 4, batch_, offset, total, 4);
        reorder<T, true>(dcls.data.data(), d_cls.data(), cells * k, batch_, offset, total, k);
        dp[l] = box_head_.backward(dbox);
        cpu::add_in_place(dp[l], cls_head_.backward(dcls));
    }
    auto dc = fpn_.backward(dp);
    backbone_.backward(dc);
    grids_.clear();
}

template <class T>
std::vector<T> retinanet_model<T>::anchors(focal::size2d image, const std::vector<focal::size2d>& grids) const {
    std::ptrdiff_t count = 0;
    for (const auto& g : grids) count += g.height * g.width * config_.anchors_per_cell();
    std::vector<T> out(static_cast<std::size_t>(count) * 4);
    focal::generate_anchors(config_.anchors, image, std::span<const focal::size2d>(grids), focal::make_view(out.data(), count, std::ptrdiff_t(4)));
    return out;
}

template class retinanet_model<float>;
template class retinanet_model<double>;

}  // namespace retinanet::model
