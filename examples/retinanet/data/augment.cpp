// data/augment.cpp: flips, resizes and scale jitter of samples.
#include "augment.hpp"
#include "support/check.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <focal/core/error.hpp>

#include "image.hpp"

namespace retinanet::data {


namespace {

void check_sample(const sample& s, const char* where) {
    check_image(s.picture, where);
    require(s.labels.size() == s.boxes.size() && s.crowd.size() == s.boxes.size(), where,
            "boxes, labels and crowd", "of one length", s.boxes.size(), ", ", s.labels.size(), " and ", s.crowd.size());
}

}  // namespace

void horizontal_flip(sample& s) {
    check_sample(s, "retinanet::data::horizontal_flip");
    image& img = s.picture;
    const std::size_t row = static_cast<std::size_t>(img.width) * 3;
    for (int y = 0; y < img.height; ++y) {
        std::uint8_t* p = img.rgb.data() + static_cast<std::size_t>(y) * row;
        for (int a = 0, b = img.width - 1; a < b; ++a, --b)
            for (int c = 0; c < 3; ++c) std::swap(p[a * 3 + c], p[b * 3 + c]);
    }
    const auto w = static_cast<float>(img.width);
    for (auto& b : s.boxes) {
        const float x1 = b[0];
        b[0] = w - b[2];
        b[2] = w - x1;
    }
}

sample resize_sample_to(const sample& s, int width, int height) {
    check_sample(s, "retinanet::data::resize_sample_to");
    sample out;
    out.image_id = s.image_id;
    out.picture = resize_bilinear(s.picture, width, height);
    const float sx = static_cast<float>(width) / static_cast<float>(s.picture.width);
    const float sy = static_cast<float>(height) / static_cast<float>(s.picture.height);
    out.boxes = s.boxes;
    for (auto& b : out.boxes) b = {b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy};
    out.labels = s.labels;
    out.crowd = s.crowd;
    return out;
}

sample resize_sample(const sample& s, float scale) {
    constexpr const char* where = "retinanet::data::resize_sample";
    require(std::isfinite(scale) && scale > 0, where, "scale", "finite and > 0", scale);
    check_sample(s, where);
    const int w = std::max(1, static_cast<int>(std::lround(s.picture.width * static_cast<double>(scale))));
    const int h = std::max(1, static_cast<int>(std::lround(s.picture.height * static_cast<double>(scale))));
    return resize_sample_to(s, w, h);
}

sample scale_jitter(const sample& s, float scale, const scale_jitter_options& o) {
    constexpr const char* where = "retinanet::data::scale_jitter";
    require(o.width >= 0 && o.height >= 0, where, "options.width, options.height", ">= 0", o.width, ", ", o.height);
    require(o.crop_x >= 0 && o.crop_x <= 1 && o.crop_y >= 0 && o.crop_y <= 1, where, "options.crop_x, crop_y",
            "in [0, 1]", o.crop_x, ", ", o.crop_y);
    const sample scaled = resize_sample(s, scale);
    const int out_w = o.width > 0 ? o.width : s.picture.width;
    const int out_h = o.height > 0 ? o.height : s.picture.height;
    const image& src = scaled.picture;
    // Top-left of the window in the scaled image (0 when it is smaller: pad right / bottom).
    const int ox = static_cast<int>(std::lround(std::max(0, src.width - out_w) * static_cast<double>(o.crop_x)));
    const int oy = static_cast<int>(std::lround(std::max(0, src.height - out_h) * static_cast<double>(o.crop_y)));

    sample out;
    out.image_id = s.image_id;
    out.picture = make_image(out_w, out_h, o.fill);
    const int copy_w = std::min(out_w, src.width - ox), copy_h = std::min(out_h, src.height - oy);
    for (int y = 0; y < copy_h; ++y)
        std::memcpy(out.picture.rgb.data() + static_cast<std::size_t>(y) * out_w * 3,
                    src.rgb.data() + (static_cast<std::size_t>(y + oy) * src.width + ox) * 3,
                    static_cast<std::size_t>(copy_w) * 3);
    // Boxes live in the copied region [0, copy_w) x [0, copy_h); the padding holds no objects.
    const auto fx = static_cast<float>(ox), fy = static_cast<float>(oy);
    const auto cw = static_cast<float>(copy_w), ch = static_cast<float>(copy_h);
    for (std::size_t i = 0; i < scaled.boxes.size(); ++i) {
        const box& b = scaled.boxes[i];
        const box c{std::clamp(b[0] - fx, 0.0f, cw), std::clamp(b[1] - fy, 0.0f, ch), std::clamp(b[2] - fx, 0.0f, cw),
                    std::clamp(b[3] - fy, 0.0f, ch)};
        if (c[2] - c[0] < o.min_box_side || c[3] - c[1] < o.min_box_side) continue;
        out.boxes.push_back(c);
        out.labels.push_back(scaled.labels[i]);
        out.crowd.push_back(scaled.crowd[i]);
    }
    return out;
}

}  // namespace retinanet::data
