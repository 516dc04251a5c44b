// data/sample.hpp: what every dataset hands to the trainer: an RGB image, its boxes and labels.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace retinanet::data {

using colour = std::array<std::uint8_t, 3>;  // r, g, b
using box = std::array<float, 4>;  // absolute pixels x1, y1, x2, y2 (x2, y2 exclusive: width = x2 - x1)

// An 8-bit RGB image, row-major HWC: pixel (x, y) channel c is rgb[(y * width + x) * 3 + c].
struct image {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;
};

struct sample {
    std::int64_t image_id = 0;
    image picture;
    std::vector<box> boxes;            // absolute pixels x1, y1, x2, y2
    std::vector<int> labels;           // contiguous 0..K-1
    std::vector<std::uint8_t> crowd;   // 1 = iscrowd (COCO), same length as labels
};

// A dataset with random access. Both FMNIST-Det splits and COCO datasets implement it.
// get() must be safe to call from several threads at once (the implementations here are).
class dataset {
public:
    virtual ~dataset() = default;
    virtual std::size_t size() const = 0;
    virtual sample get(std::size_t index) const = 0;
    virtual const std::vector<std::string>& class_names() const = 0;
};

}  // namespace retinanet::data
