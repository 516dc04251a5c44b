// data/image.hpp: reading, writing, creating and resizing RGB images.
#pragma once

#include <filesystem>

#include "sample.hpp"

namespace retinanet::data {

// A width x height image filled with one colour.
image make_image(int width, int height, colour fill = {0, 0, 0});

// Throws focal::error unless rgb.size() == width * height * 3 with width, height > 0;
// where names the calling function in the message.
void check_image(const image& img, const char* where);

// PNG, JPEG, BMP, ... through stb_image, converted to 3 channels (grey is replicated, alpha dropped).
// A PNG's chunk CRCs are checked first, so a corrupt or truncated PNG is a focal::error naming the
// file. JPEG has no checksum: truncation is caught (stb wants the end marker), a flipped byte in the
// entropy-coded data is not.
image read_image(const std::filesystem::path& file);

// An 8-bit RGB PNG (stb_image_write).
void write_png(const std::filesystem::path& file, const image& img);

// Bilinear resize to width x height (half-pixel centres, no antialiasing: see bilinear.hpp),
// rounded to the nearest 8-bit value.
image resize_bilinear(const image& img, int width, int height);

}  // namespace retinanet::data
