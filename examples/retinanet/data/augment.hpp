// data/augment.hpp: geometric augmentation of a sample, image and boxes together. The random
// draws (flip or not, which scale, where to crop) are the caller's, e.g. from random.hpp seeded
// per step, so that augmentation stays reproducible.
#pragma once

#include "sample.hpp"

namespace retinanet::data {

// Mirror left-right in place: x1' = W - x2, x2' = W - x1.
void horizontal_flip(sample& s);

// Image resized by `scale` (bilinear) to round(W * scale) x round(H * scale) (at least 1 x 1);
// boxes multiplied by the actual ratios new_W / W and new_H / H.
sample resize_sample(const sample& s, float scale);

// The same to an exact size.
sample resize_sample_to(const sample& s, int width, int height);

struct scale_jitter_options {
    int width = 0, height = 0;           // the output canvas; 0: the input's width / height
    float crop_x = 0.5f, crop_y = 0.5f;  // where the window sits when the resized image is larger:
                                         // 0 = left / top, 1 = right / bottom (a caller's draw)
    colour fill{0, 0, 0};                // padding, at the right and bottom when it is smaller
    float min_box_side = 2;              // boxes narrower or lower than this once clipped are dropped
};

// Scale jitter (as in large-scale jitter, Ghiasi et al. 2021): resize by `scale` (drawn by the
// caller, e.g. log-uniform in [0.5, 2]), then crop or pad to a fixed canvas so batches keep one
// shape. Boxes are scaled, shifted, clipped to the canvas, and dropped below min_box_side.
sample scale_jitter(const sample& s, float scale, const scale_jitter_options& options = {});

}  // namespace retinanet::data
