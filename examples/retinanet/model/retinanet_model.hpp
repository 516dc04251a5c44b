// The RetinaNet: ResNet backbone -> FPN (P3..P7) -> class and box subnets shared across levels.
// forward() takes normalized channels-last images (N x H x W x 3, H and W multiples of the anchors'
// size_divisibility) and returns the head outputs in focal's layout: per image, anchors ordered
// by level, row, column, cell anchor (torchvision's order), i.e. [N][A][K] logits and [N][A][4]
// deltas. backward() takes the loss gradients in the same layout.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <focal/core/size2d.hpp>

#include "config.hpp"
#include "fpn.hpp"
#include "head.hpp"
#include "resnet.hpp"

namespace retinanet::model {

template <class T>
struct head_outputs {
    int batch = 0, classes = 0;
    std::ptrdiff_t anchors = 0;        // per image
    std::vector<T> cls_logits;         // [N][A][K]
    std::vector<T> bbox_regression;    // [N][A][4]
    std::vector<focal::size2d> grids;  // P3..P7 feature map sizes
};

template <class T>
class retinanet_model {
public:
    explicit retinanet_model(const model_config& config);

    head_outputs<T> forward(const cpu::tensor<T>& images);
    // Accumulates parameter gradients; d_cls [N][A][K], d_box [N][A][4] as forward's outputs.
    void backward(const std::vector<T>& d_cls, const std::vector<T>& d_box);

    // He/Kaiming backbone, torchvision FPN, the paper's heads (see head.hpp); deterministic in seed.
    void initialize(std::uint64_t seed);
    cpu::parameter_list<T>& parameters() { return parameters_; }
    void zero_grad();
    void clear();  // drops cached forward state (after an aborted step)
    const model_config& config() const noexcept { return config_; }

    // focal anchors for a batch of `image` size whose head grids are `grids` (row-major A x 4).
    std::vector<T> anchors(focal::size2d image, const std::vector<focal::size2d>& grids) const;

private:
    model_config config_;
    resnet<T> backbone_;
    fpn<T> fpn_;
    subnet<T> cls_head_, box_head_;
    cpu::parameter_list<T> parameters_;
    std::vector<focal::size2d> grids_;  // of the pending forward
    int batch_ = 0;
};

}  // namespace retinanet::model
