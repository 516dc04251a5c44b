#include "batch.hpp"

#include <algorithm>
#include <cmath>

#include <focal/core/error.hpp>

#include "data/augment.hpp"
#include "support/check.hpp"

namespace retinanet::train {

float resize_for_model(data::sample& s, const model::model_config& config) {
    const int short_side = std::min(s.picture.width, s.picture.height), long_side = std::max(s.picture.width, s.picture.height);
    require(short_side > 0, "resize_for_model", "image " + std::to_string(s.image_id), "non-empty",
            concat(s.picture.width, "x", s.picture.height));
    // torchvision's GeneralizedRCNNTransform rule: scale = min(size / short, max_size / long).
    const float scale = std::min(static_cast<float>(config.image_size) / static_cast<float>(short_side),
                                 static_cast<float>(config.max_image_size) / static_cast<float>(long_side));
    if (std::abs(scale - 1.0f) < 1e-6f) return 1.0f;
    s = data::resize_sample(s, scale);
    return scale;
}

batch make_batch(std::span<const data::sample> samples, const model::model_config& config) {
    require(!samples.empty(), "make_batch", "samples", "at least one", 0);
    const auto div = std::max<std::ptrdiff_t>(1, config.anchors.size_divisibility);
    int max_h = 0, max_w = 0;
    for (const auto& s : samples) max_h = std::max(max_h, s.picture.height), max_w = std::max(max_w, s.picture.width);
    const int h = static_cast<int>((max_h + div - 1) / div * div), w = static_cast<int>((max_w + div - 1) / div * div);
    const int n = static_cast<int>(samples.size());
    batch b;
    b.images = cpu::tensor<float>(3, n, h, w);
    for (int i = 0; i < n; ++i) {
        const auto& s = samples[i];
        // RGB HWC bytes -> channels-last floats: the same interleaving, normalized.
        for (int y = 0; y < s.picture.height; ++y) {
            const std::uint8_t* src = s.picture.rgb.data() + static_cast<std::size_t>(y) * s.picture.width * 3;
            float* dst = &b.images.at(0, i, y, 0);
            for (int x = 0; x < s.picture.width; ++x)
                for (int c = 0; c < 3; ++c)
                    dst[3 * x + c] = (static_cast<float>(src[3 * x + c]) - config.pixel_mean[c]) / config.pixel_std[c];
        }
        std::vector<float> boxes;
        std::vector<std::int64_t> labels;
        for (std::size_t g = 0; g < s.labels.size(); ++g) {
            if (!s.crowd.empty() && s.crowd[g]) continue;
            boxes.insert(boxes.end(), s.boxes[g].begin(), s.boxes[g].end());
            labels.push_back(s.labels[g]);
        }
        b.boxes.push_back(std::move(boxes));
        b.labels.push_back(std::move(labels));
        b.image_ids.push_back(s.image_id);
        b.scales.push_back(1.0f);
        b.sizes.push_back({s.picture.height, s.picture.width});
    }
    return b;
}

}  // namespace retinanet::train
