// focal/eval/coco_types.hpp: COCO ground truth and detections as plain C++ structures.
//
// Boxes are COCO's xywh: x, y of the top-left corner, then width and height, in pixels, as
// doubles. The structures hold what evaluation reads (plus image sizes and category names, so that
// coco_json.hpp can write a readable file back); ids are COCO's 64-bit integers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace focal {

using coco_id = std::int64_t;
using coco_box = std::array<double, 4>;  // x, y, w, h

struct coco_image {
    coco_id id = 0;
    std::int64_t width = 0, height = 0;  // not used by evaluation
};

struct coco_category {
    coco_id id = 0;
    std::string name;  // not used by evaluation
};

struct coco_annotation {
    coco_id id = 0;  // not used by evaluation (pycocotools' quirks with ids: see coco_eval.hpp)
    coco_id image_id = 0;
    coco_id category_id = 0;
    coco_box bbox{};
    // COCO's "area" field (the segment's area): it, not bbox w * h, picks the area range.
    double area = 0;
    // A crowd region: always ignored, matched by intersection / detection area, any number of times.
    bool iscrowd = false;
};

struct coco_detection {
    coco_id image_id = 0;
    coco_id category_id = 0;
    coco_box bbox{};  // its area range is decided by w * h
    double score = 0;
};

struct coco_ground_truth {
    std::vector<coco_image> images;
    std::vector<coco_category> categories;
    std::vector<coco_annotation> annotations;
};

}  // namespace focal
