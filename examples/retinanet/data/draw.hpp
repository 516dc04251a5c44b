// data/draw.hpp: drawing boxes, text and detections onto images, and tiling images into a mosaic.
// Everything is clipped to the image; nothing throws for shapes partly or wholly outside it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sample.hpp"

namespace retinanet::data {

// Pixels [x0, x1) x [y0, y1) set to colour c.
void fill_rect(image& img, int x0, int y0, int x1, int y1, colour c);

// The outline of b = [x1, y1, x2, y2) (rounded to whole pixels: columns round(x1) .. round(x2) - 1),
// `thickness` pixels wide, drawn inside the box.
void draw_box(image& img, const box& b, colour c, int thickness = 1);

// Text in stb_easy_font's 5 x 7 segment font, `scale` pixels per font unit, top-left at (x, y).
// Printable ASCII only (other bytes are drawn as '?'); '\n' starts a line.
void draw_text(image& img, int x, int y, std::string_view text, colour c, int scale = 1);
// The size in pixels draw_text covers: {width, height}.
std::pair<int, int> text_size(std::string_view text, int scale = 1);

// Text on a filled rectangle (1 pixel margin), top-left at (x, y).
void draw_label(image& img, int x, int y, std::string_view text, colour text_colour, colour background,
                int scale = 1);

// A distinct colour per class (a fixed palette, cycled).
colour class_colour(int label);

// Boxes with score >= score_threshold, in the class colour, each with "name score" above it (or
// inside its top when there is no room). scores may be empty: every box is drawn, labelled with
// its name only (ground truth). A label outside class_names is written as its number.
void draw_detections(image& img, std::span<const box> boxes, std::span<const int> labels,
                     std::span<const float> scores, const std::vector<std::string>& class_names,
                     float score_threshold = 0.5f, int thickness = 1);

// A mosaic, `columns` images per row in cells of the largest width and height, `padding` pixels
// around every cell, in row-major order; cells are filled with `background` first.
image tile_images(const std::vector<image>& images, int columns, int padding = 2,
                  colour background = {255, 255, 255});

}  // namespace retinanet::data
