// The RetinaNet over any backend (backend.hpp): ResNet backbone -> FPN (P3..P7) -> class and box
// subnets shared across levels. forward() takes normalized channels-last images (N x H x W x 3, H
// and W multiples of the anchors' size_divisibility) and returns the head outputs in focal's
// layout: per image, anchors ordered by level, row, column, cell anchor (torchvision's order), i.e.
// [N][A][K] logits and [N][A][4] deltas. backward() takes the loss gradients in the same layout.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include <focal/anchor/anchor_spec.hpp>
#include <focal/core/size2d.hpp>

#include "fpn.hpp"
#include "head.hpp"
#include "resnet.hpp"

namespace retinanet::model {

template <class Storage>
struct head_outputs_of {
    int batch = 0, classes = 0;
    std::ptrdiff_t anchors = 0;        // per image
    Storage cls_logits;                // [N][A][K]
    Storage bbox_regression;           // [N][A][4]
    std::vector<focal::size2d> grids;  // P3..P7 feature map sizes
};

template <network_backend B>
class retinanet_network {
public:
    using tensor = typename B::tensor;
    using outputs = head_outputs_of<typename B::head_storage>;

    // Creates every layer on b, in the parameters' order (backbone, FPN, class head, box head).
    retinanet_network(B& b, const model_config& c)
        : b_(b),
          config_(c),
          backbone_(b, c),
          fpn_(b, c),
          cls_head_(b, c, "head.classification_head", "cls_logits", c.num_classes),
          box_head_(b, c, "head.regression_head", "bbox_reg", 4) {
        require(c.num_classes > 0, "retinanet_network", "config.num_classes", "positive", c.num_classes);
        require(c.anchors.levels.size() == 5, "retinanet_network", "config.anchors.levels", "five levels (P3..P7)", c.anchors.levels.size());
        for (const auto& level : c.anchors.levels)
            require(focal::anchors_per_cell(level) == c.anchors_per_cell(), "retinanet_network", "config.anchors",
                    "the same anchors per cell on every level (the heads are shared)", focal::anchors_per_cell(level));
    }

    outputs forward(const tensor& images) {
        require(images.c == 3 && images.n > 0, "retinanet_network::forward", "images", "[3 x N x H x W] with N > 0",
                concat("[", images.c, " x ", images.n, " x ", images.h, " x ", images.w, "]"));
        const auto p = fpn_.forward(backbone_.forward(images));
        outputs out;
        out.batch = images.n;
        out.classes = config_.num_classes;
        const int a = config_.anchors_per_cell();
        for (const auto& level : p) {
            out.grids.push_back({level.h, level.w});
            out.anchors += static_cast<std::ptrdiff_t>(level.h) * level.w * a;
        }
        out.cls_logits = b_.head_storage_of(static_cast<std::size_t>(out.batch * out.anchors * out.classes));
        out.bbox_regression = b_.head_storage_of(static_cast<std::size_t>(out.batch * out.anchors * 4));
        std::ptrdiff_t offset = 0;
        for (const auto& level : p) {  // P3 first: backward unwinds the shared heads from P7
            b_.to_flat(cls_head_.forward(level), out.cls_logits, offset, out.anchors, out.classes);
            b_.to_flat(box_head_.forward(level), out.bbox_regression, offset, out.anchors, 4);
            offset += static_cast<std::ptrdiff_t>(level.h) * level.w * a;
        }
        grids_ = out.grids;
        batch_ = out.batch;
        return out;
    }

    // d_cls [N][A][K], d_box [N][A][4] of the last forward; accumulates the parameters' gradients.
    void backward(typename B::head_gradient d_cls, typename B::head_gradient d_box) {
        require(!grids_.empty(), "retinanet_network::backward", "a forward in training mode", "before backward", "none pending");
        const int a = config_.anchors_per_cell(), k = config_.num_classes;
        const std::ptrdiff_t total = anchors_per_image();
        std::array<tensor, 5> dp;
        std::ptrdiff_t offset = total;
        for (int l = 4; l >= 0; --l) {
            const int h = static_cast<int>(grids_[l].height), w = static_cast<int>(grids_[l].width);
            offset -= static_cast<std::ptrdiff_t>(h) * w * a;
            dp[l] = box_head_.backward(b_.from_flat(d_box, 4 * a, batch_, h, w, offset, total, 4));
            b_.add_in_place(dp[l], cls_head_.backward(b_.from_flat(d_cls, k * a, batch_, h, w, offset, total, k)));
        }
        auto dc = fpn_.backward(dp);
        backbone_.backward(dc);
        grids_.clear();
    }

    // Anchors per image of the pending forward (0 when none).
    std::ptrdiff_t anchors_per_image() const noexcept {
        std::ptrdiff_t total = 0;
        for (const auto& g : grids_) total += g.height * g.width * config_.anchors_per_cell();
        return total;
    }
    int pending_batch() const noexcept { return grids_.empty() ? 0 : batch_; }

    void clear() {  // drops cached forward state (after an aborted step)
        backbone_.clear();
        fpn_.clear();
        cls_head_.clear();
        box_head_.clear();
        grids_.clear();
    }

    // He/Kaiming backbone, torchvision FPN, the paper's heads (head.hpp); a pure function of init's seed.
    template <class Initializer>
    void initialize(Initializer& init) const {
        backbone_.initialize(config_, init);
        fpn_.initialize(init);
        const double pi = config_.prior_probability;
        cls_head_.initialize(init, -std::log((1.0 - pi) / pi));
        box_head_.initialize(init, 0.0);
    }
    const model_config& config() const noexcept { return config_; }

private:
    B& b_;
    model_config config_;
    resnet<B> backbone_;
    fpn<B> fpn_;
    subnet<B> cls_head_, box_head_;
    std::vector<focal::size2d> grids_;  // of the pending forward
    int batch_ = 0;
};

}  // namespace retinanet::model
