// focal/retinanet/normalizer.hpp: what a batch's losses are divided by (the RetinaNet loss normalizer),
// as FOCAL_HD functions of the positive-anchor counts, so host code, device code and a trainer
// that reduces the counts itself (across processes, for instance) share one definition.
//
// With P_i the positives of image i of a batch of B and P = sum_i P_i, image i's loss is divided by
//   per_image       B * max(1, P_i)                torchvision (per image, then mean over images)
//   batch_ema       ema <- m ema + (1 - m) max(1, P), then ema     detectron2 (ema starts at 100)
//   batch_plus_one  P + B                          Detectron (the paper's code)
// P and B may be any counts the caller reduced (the positives and images of every process).
#pragma once

#include <cstdint>

#include "../config.hpp"

namespace focal {

enum class loss_normalizer { per_image, batch_ema, batch_plus_one };

// The normalizer the batch normalizers share, from the batch's positives and images; batch_ema
// advances `ema` by one step (call it once per batch). 0 for per_image, which has none.
FOCAL_HD inline double batch_normalizer(loss_normalizer kind, std::int64_t positives, std::int64_t images, double ema_momentum,
                                        double& ema) {
    switch (kind) {
        case loss_normalizer::batch_ema: {
            const double p = static_cast<double>(positives);
            ema = ema_momentum * ema + (1.0 - ema_momentum) * (p > 1.0 ? p : 1.0);
            return ema;
        }
        case loss_normalizer::batch_plus_one: return static_cast<double>(positives + images);
        case loss_normalizer::per_image: break;
    }
    return 0.0;
}

// Image i's divisor: per_image's B * max(1, P_i), else the batch's shared normalizer.
FOCAL_HD inline double image_normalizer(loss_normalizer kind, std::int64_t image_positives, std::int64_t images, double batch_norm) {
    if (kind != loss_normalizer::per_image) return batch_norm;
    return static_cast<double>(images) * static_cast<double>(image_positives > 1 ? image_positives : 1);
}

}  // namespace focal
