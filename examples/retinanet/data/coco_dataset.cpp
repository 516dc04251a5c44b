// data/coco_dataset.cpp: COCO JSON through focal's checked readers (focal/eval/coco_json.hpp).
#include "coco_dataset.hpp"
#include "support/check.hpp"

#include <algorithm>
#include <fstream>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <focal/core/error.hpp>
#include <focal/eval/coco_json.hpp>

#include "image.hpp"

namespace retinanet::data {


coco_dataset::coco_dataset(const std::filesystem::path& annotation_file, const std::filesystem::path& image_folder) {
    constexpr const char* where = "retinanet::data::coco_dataset";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(annotation_file, ec))
        fail(where, "annotation_file", "an existing COCO JSON file", "\"", annotation_file.string(), "\"");
    if (!std::filesystem::is_directory(image_folder, ec))
        fail(where, "image_folder", "an existing folder", "\"", image_folder.string(), "\"");
    nlohmann::json doc;
    focal::coco_ground_truth gt;
    std::ifstream in(annotation_file, std::ios::binary);
    if (!in) fail(where, "annotation_file", "readable", "\"", annotation_file.string(), "\"");
    try {
        doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {  // syntax errors, numbers out of range
        fail(where, "annotation_file", "valid JSON", e.what(), " (in \"", annotation_file.string(), "\")");
    }
    try {
        gt = focal::coco_ground_truth_from_json(doc);
    } catch (const focal::error& e) {  // say which file
        throw focal::error(std::string(e.what()) + " (in \"" + annotation_file.string() + "\")");
    }
    auto bad = [&](const std::string& path, const char* expected, const std::string& got) {
        fail(where, path, expected, got, " (in \"", annotation_file.string(), "\")");
    };

    // Categories in id order -> labels 0..K-1.
    std::vector<std::pair<focal::coco_id, std::string>> categories;
    for (const auto& c : gt.categories) categories.emplace_back(c.id, c.name);
    std::sort(categories.begin(), categories.end());
    std::unordered_map<focal::coco_id, int> label_of;
    for (const auto& [id, name] : categories) {
        if (!label_of.emplace(id, static_cast<int>(category_ids_.size())).second)
            bad("categories[].id", "unique", std::to_string(id) + " twice");
        category_ids_.push_back(id);
        class_names_.push_back(name.empty() ? std::to_string(id) : name);
    }

    const auto& json_images = doc["images"];
    std::unordered_map<focal::coco_id, std::size_t> index_of;
    images_.resize(gt.images.size());
    for (std::size_t i = 0; i < gt.images.size(); ++i) {
        const std::string path = "images[" + std::to_string(i) + "]";
        const auto& img = gt.images[i];
        if (!index_of.emplace(img.id, i).second) bad(path + ".id", "unique", std::to_string(img.id) + " again");
        const auto name = json_images[i].find("file_name");
        if (name == json_images[i].end()) bad(path + ".file_name", "present", "an image without \"file_name\"");
        if (!name->is_string()) bad(path + ".file_name", "a string", std::string("a JSON ") + name->type_name());
        if (img.width < 0 || img.height < 0 || img.width > 1 << 20 || img.height > 1 << 20)
            bad(path + ".width, height", "in [0, 2^20]",
                std::to_string(img.width) + ", " + std::to_string(img.height));
        entry& e = images_[i];
        e.id = img.id;
        e.width = static_cast<int>(img.width);
        e.height = static_cast<int>(img.height);
        e.file = image_folder / name->get<std::string>();
    }

    for (std::size_t i = 0; i < gt.annotations.size(); ++i) {
        const auto& a = gt.annotations[i];
        const std::string path = "annotations[" + std::to_string(i) + "]";
        const auto img = index_of.find(a.image_id);
        if (img == index_of.end()) bad(path + ".image_id", "the id of an image", std::to_string(a.image_id));
        const auto cat = label_of.find(a.category_id);
        if (cat == label_of.end()) bad(path + ".category_id", "the id of a category", std::to_string(a.category_id));
        const auto [x, y, w, h] = a.bbox;
        if (!(w > 0 && h > 0)) continue;
        entry& e = images_[img->second];
        e.boxes.push_back({static_cast<float>(x), static_cast<float>(y), static_cast<float>(x + w),
                           static_cast<float>(y + h)});
        e.labels.push_back(cat->second);
        e.crowd.push_back(a.iscrowd ? 1 : 0);
    }
}

const std::filesystem::path& coco_dataset::image_path(std::size_t index) const {
    require(index < images_.size(), "retinanet::data::coco_dataset::image_path", "index",
            "below size() = " + std::to_string(images_.size()), index);
    return images_[index].file;
}

sample coco_dataset::annotations(std::size_t index) const {
    require(index < images_.size(), "retinanet::data::coco_dataset::annotations", "index",
            "below size() = " + std::to_string(images_.size()), index);
    const entry& e = images_[index];
    sample s;
    s.image_id = e.id;
    s.picture.width = e.width;
    s.picture.height = e.height;
    s.boxes = e.boxes;
    s.labels = e.labels;
    s.crowd = e.crowd;
    return s;
}

sample coco_dataset::get(std::size_t index) const {
    require(index < images_.size(), "retinanet::data::coco_dataset::get", "index",
            "below size() = " + std::to_string(images_.size()), index);
    sample s = annotations(index);
    const int w = s.picture.width, h = s.picture.height;
    s.picture = read_image(images_[index].file);
    if ((w > 0 && w != s.picture.width) || (h > 0 && h != s.picture.height))
        fail("retinanet::data::coco_dataset::get", "the image size", "the annotation's " + std::to_string(w) + " x " +
             std::to_string(h), s.picture.width, " x ", s.picture.height, " in \"", images_[index].file.string(), "\"");
    return s;
}

namespace {

// Appends one sample's image and annotations (ids continue from the last annotation).
void append_ground_truth(focal::coco_ground_truth& gt, const sample& s, std::size_t classes, const char* where) {
    require(s.labels.size() == s.boxes.size() && s.crowd.size() == s.boxes.size(), where, "boxes, labels and crowd",
            "of one length", s.boxes.size(), ", ", s.labels.size(), " and ", s.crowd.size(), " (image ", s.image_id,
            ")");
    gt.images.push_back({s.image_id, s.picture.width, s.picture.height});
    for (std::size_t j = 0; j < s.boxes.size(); ++j) {
        const int label = s.labels[j];
        require(label >= 0 && static_cast<std::size_t>(label) < classes, where, "every label",
                "in [0, " + std::to_string(classes) + ")", label, " (image ", s.image_id, ")");
        const box& b = s.boxes[j];
        focal::coco_annotation a;
        a.id = static_cast<focal::coco_id>(gt.annotations.size()) + 1;
        a.image_id = s.image_id;
        a.category_id = label + 1;
        a.bbox = {b[0], b[1], static_cast<double>(b[2]) - b[0], static_cast<double>(b[3]) - b[1]};
        a.area = a.bbox[2] * a.bbox[3];
        a.iscrowd = s.crowd[j] != 0;
        gt.annotations.push_back(a);
    }
}

focal::coco_ground_truth empty_ground_truth(const dataset& data, std::size_t count, const char* where) {
    require(count <= data.size(), where, "count", "at most the dataset's size " + std::to_string(data.size()), count);
    focal::coco_ground_truth gt;
    const auto& names = data.class_names();
    for (std::size_t k = 0; k < names.size(); ++k)
        gt.categories.push_back({static_cast<focal::coco_id>(k) + 1, names[k]});
    gt.images.reserve(count);
    return gt;
}

}  // namespace

focal::coco_ground_truth make_coco_ground_truth(const dataset& data, std::size_t count) {
    constexpr const char* where = "retinanet::data::make_coco_ground_truth";
    auto gt = empty_ground_truth(data, count, where);
    const auto* coco = dynamic_cast<const coco_dataset*>(&data);
    for (std::size_t i = 0; i < count; ++i) {
        if (coco) {  // skip reading pixels when the JSON has the size
            sample s = coco->annotations(i);
            if (s.picture.width > 0 && s.picture.height > 0) {
                append_ground_truth(gt, s, gt.categories.size(), where);
                continue;
            }
        }
        append_ground_truth(gt, data.get(i), gt.categories.size(), where);
    }
    return gt;
}

void export_coco(const dataset& data, std::size_t count, const std::filesystem::path& folder) {
    constexpr const char* where = "retinanet::data::export_coco";
    auto gt = empty_ground_truth(data, count, where);
    std::error_code ec;
    std::filesystem::create_directories(folder / "images", ec);
    if (ec) fail(where, "folder", "creatable", "\"", (folder / "images").string(), "\" (", ec.message(), ")");
    std::vector<std::string> files;
    for (std::size_t i = 0; i < count; ++i) {
        const sample s = data.get(i);
        append_ground_truth(gt, s, gt.categories.size(), where);
        files.push_back(std::to_string(s.image_id) + ".png");
        write_png(folder / "images" / files.back(), s.picture);
    }
    auto doc = focal::coco_ground_truth_to_json(gt);
    for (std::size_t i = 0; i < files.size(); ++i) doc["images"][i]["file_name"] = files[i];
    const auto file = folder / "annotations.json";
    std::ofstream out(file, std::ios::binary);
    out << doc.dump() << '\n';
    if (!out) fail(where, "folder", "writable", "\"", file.string(), "\"");
}

}  // namespace retinanet::data
