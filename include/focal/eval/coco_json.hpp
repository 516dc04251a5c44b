// focal/eval/coco_json.hpp: COCO JSON files to and from coco_types.hpp (the only header that
// includes nlohmann/json; link focal::json).
//
//   read_coco_ground_truth(path or istream)   {"images": [...], "categories": [...], "annotations": [...]}
//   read_coco_results(path or istream)        [{"image_id", "category_id", "bbox", "score"}, ...]
//   write_coco_ground_truth / write_coco_results, and the *_to_json / *_from_json forms
//   coco_eval_result_to_json(result)          {"stats": {"AP": ...}, "categories": [{"id", "AP", ...}]}
//
// Read: the fields pycocotools' bbox evaluation needs, each required, with its type checked:
//   images[i]: id (integer); width, height (optional integers)
//   categories[i]: id (integer); name (optional string)
//   annotations[i]: id (integer, unique), image_id, category_id (integers), bbox (4 numbers),
//                   area (number), iscrowd (0, 1, true or false); "annotations" itself may be
//                   absent (no ground truth), as in pycocotools
//   results[i]: image_id, category_id (integers), bbox (4 numbers), score (number)
// Other fields are ignored, as pycocotools ignores them for bbox evaluation: "ignore" (it
// overwrites it with iscrowd), "segmentation", and a result's "area" and "id" (loadRes recomputes
// them). Any violation throws focal::error naming the element, e.g.
//   focal::read_coco_results: results[3].score must be a number, got "high"
// Which ids must exist (a result's image id in the ground truth, ...) is checked by coco_evaluate.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <limits>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "coco_result.hpp"
#include "coco_types.hpp"

namespace focal {

namespace detail {

// Appends v as dump() writes it, stopping once out holds more than `limit` characters, so that
// the recursion is bounded by the limit rather than by the document's depth (dump() of a value
// nested 100,000 deep overflows the stack).
inline void json_brief_into(const nlohmann::json& v, std::string& out, std::size_t limit) {
    if (!v.is_structured()) {
        out += v.dump();
        return;
    }
    out += v.is_array() ? '[' : '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
        if (!first) out += ',';
        first = false;
        if (v.is_object()) out += nlohmann::json(it.key()).dump() + ":";
        json_brief_into(it.value(), out, limit);
    }
    out += v.is_array() ? ']' : '}';
}

// A short rendering of a JSON value for messages.
inline std::string json_brief(const nlohmann::json& v) {
    std::string s;
    json_brief_into(v, s, 60);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

inline const nlohmann::json& json_field(const nlohmann::json& obj, const char* key, const char* where,
                                        const std::string& path) {
    const auto it = obj.find(key);
    if (it == obj.end()) fail(where, path + "." + key, "present", "an object without \"", key, "\"");
    return *it;
}

inline std::int64_t json_integer(const nlohmann::json& v, const char* where, const std::string& path) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return static_cast<std::int64_t>(u);
    } else if (v.is_number_integer()) {
        return v.get<std::int64_t>();
    }
    fail(where, path, "an integer (64-bit)", json_brief(v));
}

inline double json_number(const nlohmann::json& v, const char* where, const std::string& path) {
    if (!v.is_number()) fail(where, path, "a number", json_brief(v));
    return v.get<double>();
}

inline coco_box json_box(const nlohmann::json& v, const char* where, const std::string& path) {
    if (!v.is_array() || v.size() != 4 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number() ||
        !v[3].is_number())
        fail(where, path, "an array of 4 numbers [x, y, w, h]", json_brief(v));
    return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>(), v[3].get<double>()};
}

inline const nlohmann::json& json_array(const nlohmann::json& doc, const char* key, const char* where) {
    const auto it = doc.find(key);
    if (it == doc.end()) fail(where, key, "present (an array)", "a document without \"", key, "\"");
    if (!it->is_array()) fail(where, key, "an array", json_brief(*it));
    return *it;
}

inline std::string json_element(const char* array, std::size_t i) {
    return std::string(array) + "[" + std::to_string(i) + "]";
}

inline void json_require_object(const nlohmann::json& v, const char* where, const std::string& path) {
    if (!v.is_object()) fail(where, path, "a JSON object", json_brief(v));
}

inline nlohmann::json parse_json(std::istream& in, const char* where) {
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // syntax errors, numbers out of range
        fail(where, "input", "valid JSON", e.what());
    }
}

inline std::ifstream open_json(const std::filesystem::path& file, const char* where) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(where, "file", "readable", "\"", file.string(), "\"");
    return in;
}

inline coco_ground_truth coco_ground_truth_from_json(const nlohmann::json& doc, const char* where) {
    if (!doc.is_object())
        fail(where, "the ground truth", "a JSON object with \"images\", \"categories\" and \"annotations\"",
             json_brief(doc));
    coco_ground_truth gt;
    const auto& images = json_array(doc, "images", where);
    gt.images.reserve(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) {
        const auto& v = images[i];
        const std::string path = json_element("images", i);
        json_require_object(v, where, path);
        coco_image img;
        img.id = json_integer(json_field(v, "id", where, path), where, path + ".id");
        if (const auto w = v.find("width"); w != v.end()) img.width = json_integer(*w, where, path + ".width");
        if (const auto h = v.find("height"); h != v.end()) img.height = json_integer(*h, where, path + ".height");
        gt.images.push_back(img);
    }
    const auto& categories = json_array(doc, "categories", where);
    gt.categories.reserve(categories.size());
    for (std::size_t i = 0; i < categories.size(); ++i) {
        const auto& v = categories[i];
        const std::string path = json_element("categories", i);
        json_require_object(v, where, path);
        coco_category cat;
        cat.id = json_integer(json_field(v, "id", where, path), where, path + ".id");
        if (const auto n = v.find("name"); n != v.end()) {
            if (!n->is_string()) fail(where, path + ".name", "a string", json_brief(*n));
            cat.name = n->get<std::string>();
        }
        gt.categories.push_back(std::move(cat));
    }
    if (!doc.contains("annotations")) return gt;
    const auto& annotations = json_array(doc, "annotations", where);
    gt.annotations.reserve(annotations.size());
    // pycocotools indexes annotations by id: with a repeated id it would evaluate one of them twice.
    std::unordered_map<coco_id, std::size_t> seen;
    seen.reserve(annotations.size());
    for (std::size_t i = 0; i < annotations.size(); ++i) {
        const auto& v = annotations[i];
        const std::string path = json_element("annotations", i);
        json_require_object(v, where, path);
        coco_annotation a;
        a.id = json_integer(json_field(v, "id", where, path), where, path + ".id");
        if (const auto [it, inserted] = seen.emplace(a.id, i); !inserted)
            fail(where, path + ".id", "unique", a.id, " again (annotations[", it->second, "].id)");
        a.image_id = json_integer(json_field(v, "image_id", where, path), where, path + ".image_id");
        a.category_id = json_integer(json_field(v, "category_id", where, path), where, path + ".category_id");
        a.bbox = json_box(json_field(v, "bbox", where, path), where, path + ".bbox");
        a.area = json_number(json_field(v, "area", where, path), where, path + ".area");
        const auto& crowd = json_field(v, "iscrowd", where, path);
        if (crowd.is_boolean()) {
            a.iscrowd = crowd.get<bool>();
        } else if (crowd.is_number() && (crowd.get<double>() == 0.0 || crowd.get<double>() == 1.0)) {
            a.iscrowd = crowd.get<double>() == 1.0;
        } else {
            fail(where, path + ".iscrowd", "0, 1, true or false", json_brief(crowd));
        }
        gt.annotations.push_back(a);
    }
    return gt;
}

inline std::vector<coco_detection> coco_results_from_json(const nlohmann::json& doc, const char* where) {
    // pycocotools: assert type(anns) == list, 'results in not an array of objects'
    if (!doc.is_array()) fail(where, "the results", "a JSON array of detections", json_brief(doc));
    std::vector<coco_detection> out;
    out.reserve(doc.size());
    std::string path;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const auto& v = doc[i];
        path = json_element("results", i);
        json_require_object(v, where, path);
        coco_detection d;
        d.image_id = json_integer(json_field(v, "image_id", where, path), where, path + ".image_id");
        d.category_id = json_integer(json_field(v, "category_id", where, path), where, path + ".category_id");
        d.bbox = json_box(json_field(v, "bbox", where, path), where, path + ".bbox");
        d.score = json_number(json_field(v, "score", where, path), where, path + ".score");
        out.push_back(d);
    }
    return out;
}

}  // namespace detail

// ---- reading ----

inline coco_ground_truth coco_ground_truth_from_json(const nlohmann::json& doc) {
    return detail::coco_ground_truth_from_json(doc, "focal::coco_ground_truth_from_json");
}
inline coco_ground_truth read_coco_ground_truth(std::istream& in) {
    constexpr const char* where = "focal::read_coco_ground_truth";
    return detail::coco_ground_truth_from_json(detail::parse_json(in, where), where);
}
inline coco_ground_truth read_coco_ground_truth(const std::filesystem::path& file) {
    constexpr const char* where = "focal::read_coco_ground_truth";
    auto in = detail::open_json(file, where);
    return detail::coco_ground_truth_from_json(detail::parse_json(in, where), where);
}

inline std::vector<coco_detection> coco_results_from_json(const nlohmann::json& doc) {
    return detail::coco_results_from_json(doc, "focal::coco_results_from_json");
}
inline std::vector<coco_detection> read_coco_results(std::istream& in) {
    constexpr const char* where = "focal::read_coco_results";
    return detail::coco_results_from_json(detail::parse_json(in, where), where);
}
inline std::vector<coco_detection> read_coco_results(const std::filesystem::path& file) {
    constexpr const char* where = "focal::read_coco_results";
    auto in = detail::open_json(file, where);
    return detail::coco_results_from_json(detail::parse_json(in, where), where);
}

// ---- writing (numbers as the shortest text that reads back to the same double) ----

namespace detail {
// nlohmann writes NaN and infinity as null, a file no reader takes back: refuse them when writing.
inline void json_require_finite(const double* v, std::size_t n, const char* where, const std::string& path) {
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(v[i]))
            fail(where, path, n == 1 ? "finite (JSON has no NaN or infinity)" : "finite numbers (JSON has no NaN or infinity)",
                 v[i], n == 1 ? "" : concat(" at index ", i));
}
}  // namespace detail

inline nlohmann::json coco_ground_truth_to_json(const coco_ground_truth& gt) {
    for (std::size_t i = 0; i < gt.annotations.size(); ++i) {
        const std::string path = detail::json_element("gt.annotations", i);
        detail::json_require_finite(gt.annotations[i].bbox.data(), 4, "focal::coco_ground_truth_to_json", path + ".bbox");
        detail::json_require_finite(&gt.annotations[i].area, 1, "focal::coco_ground_truth_to_json", path + ".area");
    }
    nlohmann::json images = nlohmann::json::array(), categories = nlohmann::json::array(),
                   annotations = nlohmann::json::array();
    for (const auto& i : gt.images) images.push_back({{"id", i.id}, {"width", i.width}, {"height", i.height}});
    for (const auto& c : gt.categories) categories.push_back({{"id", c.id}, {"name", c.name}});
    for (const auto& a : gt.annotations)
        annotations.push_back({{"id", a.id},
                               {"image_id", a.image_id},
                               {"category_id", a.category_id},
                               {"bbox", a.bbox},
                               {"area", a.area},
                               {"iscrowd", a.iscrowd ? 1 : 0}});
    return {{"images", std::move(images)}, {"categories", std::move(categories)}, {"annotations", std::move(annotations)}};
}

inline nlohmann::json coco_results_to_json(std::span<const coco_detection> detections) {
    for (std::size_t i = 0; i < detections.size(); ++i) {
        const std::string path = detail::json_element("detections", i);
        detail::json_require_finite(detections[i].bbox.data(), 4, "focal::coco_results_to_json", path + ".bbox");
        detail::json_require_finite(&detections[i].score, 1, "focal::coco_results_to_json", path + ".score");
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : detections)
        out.push_back({{"image_id", d.image_id}, {"category_id", d.category_id}, {"bbox", d.bbox}, {"score", d.score}});
    return out;
}

inline void write_coco_ground_truth(std::ostream& out, const coco_ground_truth& gt) {
    out << coco_ground_truth_to_json(gt).dump();
}
inline void write_coco_results(std::ostream& out, std::span<const coco_detection> detections) {
    out << coco_results_to_json(detections).dump();
}

// The 12 stats by name, and per category (in id order) its AP, AP50, AP75 and AR100 (-1: no ground truth).
inline nlohmann::json coco_eval_result_to_json(const coco_eval_result& res) {
    nlohmann::json stats = nlohmann::json::object();
    for (std::size_t i = 0; i < res.stats.size(); ++i) stats[std::string(coco_stat_names[i])] = res.stats[i];
    const auto queries = coco_standard_queries(res.params);
    nlohmann::json categories = nlohmann::json::array();
    for (index_t k = 0; k < res.num_categories(); ++k) {
        nlohmann::json c = {{"id", res.category_ids[static_cast<std::size_t>(k)]}};
        for (const std::size_t i : {0, 1, 2, 8}) {
            coco_query q = queries[i];
            q.category = k;
            c[std::string(coco_stat_names[i])] = coco_summarize(res, q);
        }
        categories.push_back(std::move(c));
    }
    return {{"stats", std::move(stats)}, {"categories", std::move(categories)}};
}

}  // namespace focal
