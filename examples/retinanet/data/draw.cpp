// data/draw.cpp: boxes, stb_easy_font text (its quads filled as rectangles), mosaics.
#include "draw.hpp"
#include "support/check.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <stb/stb_easy_font.h>

#include <focal/core/error.hpp>

#include "image.hpp"

namespace retinanet::data {


namespace {

struct rect {
    float x0, y0, x1, y1;
};

// The quads stb_easy_font makes for text at the origin, in font units.
std::vector<rect> text_quads(std::string_view text) {
    std::string clean(text);
    for (char& ch : clean)
        if (ch != '\n' && (ch < 32 || ch > 126)) ch = '?';  // the font covers printable ASCII only
    std::vector<char> buffer(clean.size() * 320 + 64);       // ~270 bytes a character (stb's estimate)
    const int quads = stb_easy_font_print(0, 0, clean.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
    std::vector<rect> out;
    out.reserve(static_cast<std::size_t>(quads));
    for (int q = 0; q < quads; ++q) {
        rect r{1e30f, 1e30f, -1e30f, -1e30f};
        for (int v = 0; v < 4; ++v) {  // a vertex: x, y, z as floats, then 4 colour bytes
            float xy[2];
            std::memcpy(xy, buffer.data() + (q * 4 + v) * 16, sizeof xy);
            r = {std::min(r.x0, xy[0]), std::min(r.y0, xy[1]), std::max(r.x1, xy[0]), std::max(r.y1, xy[1])};
        }
        out.push_back(r);
    }
    return out;
}

int round_px(float v) { return static_cast<int>(std::lround(v)); }

}  // namespace

void fill_rect(image& img, int x0, int y0, int x1, int y1, colour c) {
    check_image(img, "retinanet::data::fill_rect");
    x0 = std::max(x0, 0);
    y0 = std::max(y0, 0);
    x1 = std::min(x1, img.width);
    y1 = std::min(y1, img.height);
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
            std::memcpy(img.rgb.data() + (static_cast<std::size_t>(y) * img.width + x) * 3, c.data(), 3);
}

void draw_box(image& img, const box& b, colour c, int thickness) {
    require(thickness >= 1, "retinanet::data::draw_box", "thickness", ">= 1", thickness);
    if (!(std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]))) return;
    auto clamp_coord = [](float v) { return std::clamp(v, -1e6f, 1e6f); };  // keeps lround in range
    const int x0 = round_px(clamp_coord(b[0])), y0 = round_px(clamp_coord(b[1]));
    const int x1 = std::max(round_px(clamp_coord(b[2])), x0 + 1), y1 = std::max(round_px(clamp_coord(b[3])), y0 + 1);
    const int t = std::min({thickness, (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2});
    fill_rect(img, x0, y0, x1, y0 + t, c);  // top
    fill_rect(img, x0, y1 - t, x1, y1, c);  // bottom
    fill_rect(img, x0, y0, x0 + t, y1, c);  // left
    fill_rect(img, x1 - t, y0, x1, y1, c);  // right
}

void draw_text(image& img, int x, int y, std::string_view text, colour c, int scale) {
    require(scale >= 1, "retinanet::data::draw_text", "scale", ">= 1", scale);
    for (const rect& r : text_quads(text))
        fill_rect(img, x + round_px(r.x0 * scale), y + round_px(r.y0 * scale), x + round_px(r.x1 * scale),
                  y + round_px(r.y1 * scale), c);
}

std::pair<int, int> text_size(std::string_view text, int scale) {
    int w = 0, h = 0;
    for (const rect& r : text_quads(text)) {
        w = std::max(w, round_px(r.x1 * scale));
        h = std::max(h, round_px(r.y1 * scale));
    }
    return {w, h};
}

void draw_label(image& img, int x, int y, std::string_view text, colour text_colour, colour background, int scale) {
    const auto [w, h] = text_size(text, scale);
    fill_rect(img, x, y, x + w + 2, y + h + 2, background);
    draw_text(img, x + 1, y + 1, text, text_colour, scale);
}

colour class_colour(int label) {
    static constexpr std::array<colour, 12> palette{{{230, 25, 75},
                                                     {60, 180, 75},
                                                     {255, 225, 25},
                                                     {0, 130, 200},
                                                     {245, 130, 48},
                                                     {145, 30, 180},
                                                     {70, 240, 240},
                                                     {240, 50, 230},
                                                     {210, 245, 60},
                                                     {250, 190, 212},
                                                     {0, 128, 128},
                                                     {170, 110, 40}}};
    const auto n = static_cast<int>(palette.size());
    return palette[static_cast<std::size_t>(((label % n) + n) % n)];
}

void draw_detections(image& img, std::span<const box> boxes, std::span<const int> labels, std::span<const float> scores,
                     const std::vector<std::string>& class_names, float score_threshold, int thickness) {
    constexpr const char* where = "retinanet::data::draw_detections";
    check_image(img, where);
    require(labels.size() == boxes.size() && (scores.empty() || scores.size() == boxes.size()), where,
            "labels and scores", "as many as boxes (scores may be empty)", labels.size(), " labels, ", scores.size(),
            " scores for ", boxes.size(), " boxes");
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        if (!scores.empty() && !(scores[i] >= score_threshold)) continue;
        const int label = labels[i];
        const colour c = class_colour(label);
        draw_box(img, boxes[i], c, thickness);
        std::string text = label >= 0 && static_cast<std::size_t>(label) < class_names.size()
                               ? class_names[static_cast<std::size_t>(label)]
                               : std::to_string(label);
        if (!scores.empty()) {
            char score[16];
            std::snprintf(score, sizeof score, " %.2f", static_cast<double>(scores[i]));
            text += score;
        }
        const int h = text_size(text).second;
        const int x = round_px(std::clamp(boxes[i][0], -1e6f, 1e6f));
        const int top = round_px(std::clamp(boxes[i][1], -1e6f, 1e6f));
        const int y = top - h - 2 >= 0 ? top - h - 2 : top;  // above the box, else inside its top
        // Dark text on light colours, light text on dark ones (luma, Rec. 601).
        const bool light = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140;
        draw_label(img, x, y, text, light ? colour{0, 0, 0} : colour{255, 255, 255}, c);
    }
}

image tile_images(const std::vector<image>& images, int columns, int padding, colour background) {
    constexpr const char* where = "retinanet::data::tile_images";
    require(!images.empty(), where, "images", "not empty", "none");
    require(columns >= 1 && padding >= 0, where, "columns, padding", ">= 1 and >= 0", columns, ", ", padding);
    int cell_w = 0, cell_h = 0;
    for (const auto& img : images) {
        check_image(img, where);
        cell_w = std::max(cell_w, img.width);
        cell_h = std::max(cell_h, img.height);
    }
    const int n = static_cast<int>(images.size());
    const int cols = std::min(columns, n), rows = (n + cols - 1) / cols;
    image out = make_image(cols * cell_w + (cols + 1) * padding, rows * cell_h + (rows + 1) * padding, background);
    for (int i = 0; i < n; ++i) {
        const image& img = images[static_cast<std::size_t>(i)];
        const int ox = padding + (i % cols) * (cell_w + padding), oy = padding + (i / cols) * (cell_h + padding);
        for (int y = 0; y < img.height; ++y)
            std::memcpy(out.rgb.data() + (static_cast<std::size_t>(oy + y) * out.width + ox) * 3,
                        img.rgb.data() + static_cast<std::size_t>(y) * img.width * 3,
                        static_cast<std::size_t>(img.width) * 3);
    }
    return out;
}

}  // namespace retinanet::data
