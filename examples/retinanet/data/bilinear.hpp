// data/bilinear.hpp: the sampling positions of bilinear resizing, shared by the image resizer and
// the FMNIST-Det item scaler.
//
// Half-pixel centres, as OpenCV's INTER_LINEAR and PyTorch's interpolate(align_corners=False):
// output pixel i samples the source at (i + 0.5) * src / dst - 0.5, clamped to the edge pixels.
// No antialiasing when shrinking (neither of those does it either).
#pragma once

#include <algorithm>
#include <vector>

namespace retinanet::data::detail {

struct bilinear_tap {
    int i0 = 0, i1 = 0;  // the two source pixels
    float w1 = 0;        // weight of i1; i0 gets 1 - w1
};

inline std::vector<bilinear_tap> bilinear_taps(int src, int dst) {
    std::vector<bilinear_tap> taps(static_cast<std::size_t>(dst));
    const double scale = static_cast<double>(src) / dst;
    for (int i = 0; i < dst; ++i) {
        const double pos = std::clamp((i + 0.5) * scale - 0.5, 0.0, static_cast<double>(src - 1));
        const int i0 = std::min(static_cast<int>(pos), src - 1);
        taps[static_cast<std::size_t>(i)] = {i0, std::min(i0 + 1, src - 1), static_cast<float>(pos - i0)};
    }
    return taps;
}

}  // namespace retinanet::data::detail
