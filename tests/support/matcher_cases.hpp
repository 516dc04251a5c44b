// Inputs shared by the matcher tests (host, host-side CUDA logic, and the CUDA tests): random
// boxes and the matcher settings every matcher test runs. No doctest: tests/cuda includes it too.
#pragma once

#include <random>
#include <vector>

#include <focal/assign/max_iou_matcher.hpp>
#include <focal/core/view.hpp>

namespace focal_test_support {

// n row-major xyxy boxes: centres uniform in [0, w) x [0, h), width in [smin, smax), height the
// width times a ratio in [0.5, 2).
inline std::vector<float> random_boxes(std::mt19937& rng, focal::index_t n, float w, float h, float smin, float smax) {
    std::uniform_real_distribution<float> ux(0, w), uy(0, h), us(smin, smax), ur(0.5f, 2.0f);
    std::vector<float> b;
    for (focal::index_t i = 0; i < n; ++i) {
        const float cx = ux(rng), cy = uy(rng), bw = us(rng), bh = bw * ur(rng);
        b.insert(b.end(), {cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2});
    }
    return b;
}

// The default matcher, the torchvision and Detectron presets, no low-quality matches, and odd
// thresholds with a low-quality minimum and a crowd threshold.
inline std::vector<focal::max_iou_matcher> every_matcher() {
    std::vector<focal::max_iou_matcher> ms = {focal::max_iou_matcher{}, focal::matcher_presets::torchvision(),
                                              focal::matcher_presets::detectron()};
    focal::max_iou_matcher no_low_quality;
    no_low_quality.allow_low_quality_matches = false;
    ms.push_back(no_low_quality);
    const focal::max_iou_matcher odd{.positive_iou_threshold = 0.7,
                                     .negative_iou_threshold = 0.3,
                                     .low_quality_iou_threshold = 0.2,
                                     .crowd_iof_threshold = 0.25};
    ms.push_back(odd);
    return ms;
}

}  // namespace focal_test_support
