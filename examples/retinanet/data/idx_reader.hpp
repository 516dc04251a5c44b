// data/idx_reader.hpp: MNIST-style idx files (gzip-compressed), as Fashion-MNIST ships them.
//
// Format (big-endian): magic 0x00000803 (uint8 images) or 0x00000801 (uint8 labels), then the
// dimensions as uint32 (count, rows, cols for images; count for labels), then the bytes.
// Errors (missing file, broken gzip stream, wrong magic, implausible dimensions, truncated data)
// throw focal::error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace retinanet::data {

struct idx_images {
    int count = 0, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels;  // count * rows * cols, image-major, row-major
    const std::uint8_t* image(int index) const { return pixels.data() + static_cast<std::size_t>(index) * rows * cols; }
};

struct idx_labels {
    int count = 0;
    std::vector<std::uint8_t> labels;
};

idx_images read_idx_images(const std::filesystem::path& file);
idx_labels read_idx_labels(const std::filesystem::path& file);

}  // namespace retinanet::data
