// From samples to the network's input: each image resized for the model (shorter side to
// config.image_size, longer side at most config.max_image_size; no resize when already that size),
// normalized ((pixel - mean) / std per channel), and pasted top-left into a zero canvas padded to
// the anchors' size_divisibility. Boxes follow the resize; crowd boxes are dropped for training.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <focal/core/size2d.hpp>

#include "data/sample.hpp"
#include "model/config.hpp"
#include "backend/cpu/tensor.hpp"

namespace retinanet::train {

struct batch {
    cpu::tensor<float> images;                        // N x H x W x 3 (channels-last), normalized, padded
    std::vector<std::vector<float>> boxes;           // per image, row-major G x 4, network pixels
    std::vector<std::vector<std::int64_t>> labels;   // per image, G
    std::vector<std::int64_t> image_ids;
    std::vector<float> scales;                       // network pixels per original pixel
    std::vector<focal::size2d> sizes;                // each image's size before padding
    std::shared_ptr<void> staged;                    // a training engine's copy in flight (training_engine::prepare)
    focal::size2d padded() const { return {images.h, images.w}; }
};

// Resizes for the model (see above); returns the scale applied.
float resize_for_model(data::sample& s, const model::model_config& config);

batch make_batch(std::span<const data::sample> samples, const model::model_config& config);

}  // namespace retinanet::train
