// data/coco_dataset.hpp: COCO instances files as a dataset, datasets as COCO files, and the
// ground truth focal's COCO evaluator reads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <focal/eval/coco_types.hpp>

#include "sample.hpp"

namespace retinanet::data {

// A COCO instances JSON plus its image folder.
//   images[i]: id, file_name (under image_folder), width and height (optional: when present the
//              loaded image must have that size)
//   categories: sorted by id, category k becomes label k; class_names() are their names
//   annotations: bbox [x, y, w, h] -> [x, y, x + w, y + h]; iscrowd carried in sample::crowd;
//              boxes with w <= 0 or h <= 0 are dropped (as torchvision's COCO reference does)
// Images keep the file's order and its ids (sample::image_id); images without annotations stay.
// Pixels are read in get() (thread-safe); the JSON is read and checked once, in the constructor
// (focal::error naming the element, e.g. "annotations[3].bbox", or the file).
class coco_dataset : public dataset {
public:
    coco_dataset(const std::filesystem::path& annotation_file, const std::filesystem::path& image_folder);

    std::size_t size() const override { return images_.size(); }
    sample get(std::size_t index) const override;
    const std::vector<std::string>& class_names() const override { return class_names_; }

    // The boxes, labels and id of image `index` without reading its pixels: picture has the
    // width and height from the JSON (0 when absent) and no rgb.
    sample annotations(std::size_t index) const;
    // COCO's category id of each label.
    const std::vector<focal::coco_id>& category_ids() const { return category_ids_; }
    const std::filesystem::path& image_path(std::size_t index) const;

private:
    struct entry {
        focal::coco_id id = 0;
        int width = 0, height = 0;
        std::filesystem::path file;
        std::vector<box> boxes;
        std::vector<int> labels;
        std::vector<std::uint8_t> crowd;
    };
    std::vector<entry> images_;
    std::vector<std::string> class_names_;
    std::vector<focal::coco_id> category_ids_;
};

// The ground truth of the first `count` samples, for focal::coco_evaluate: image ids as the
// samples', category id = label + 1 (named by class_names()), bbox [x1, y1, x2 - x1, y2 - y1],
// area = w * h, iscrowd from sample::crowd, annotation ids 1, 2, ... Detections must then use
// category_id = label + 1 too. (For a coco_dataset this renumbers the categories and replaces
// segment areas by box areas; its pixels are not read when the JSON gives the image sizes.)
focal::coco_ground_truth make_coco_ground_truth(const dataset& data, std::size_t count);

// Writes the first `count` samples as folder/images/<image_id>.png and folder/annotations.json
// (make_coco_ground_truth's content plus file_name "<image_id>.png"); folders are created.
// Read it back with coco_dataset(folder / "annotations.json", folder / "images").
void export_coco(const dataset& data, std::size_t count, const std::filesystem::path& folder);

}  // namespace retinanet::data
