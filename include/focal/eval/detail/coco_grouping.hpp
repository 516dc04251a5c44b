// focal/eval/detail/coco_grouping.hpp: checks the inputs and groups them by (image, category).
//
// pycocotools evaluates every (image, category) pair on its own: _gts[img, cat] and _dts[img, cat]
// list the annotations and detections of the pair in input order. Here both are index arrays
// sorted by (image rank, category rank, input position) with two stable counting sorts, and the
// pairs that have either are listed in that order (image-major: a detector's results come image
// by image, so matching reads them nearly in order). Each pair's kept detections get slots
// numbered category-major, each category's in image order: the accumulation per category then
// reads one contiguous range, in pycocotools' concatenation order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/view.hpp"
#include "../coco_types.hpp"
#include "coco_id_index.hpp"

namespace focal::detail {

struct coco_pair {
    std::uint32_t category, image;  // ranks
    std::uint32_t gt_begin, gt_end;  // range of coco_groups::gt_order
    std::uint32_t dt_begin, dt_end;  // range of coco_groups::dt_order
    std::uint64_t kept_begin;        // first slot of its kept (top max_kept) detections
};

struct coco_groups {
    std::vector<coco_id> image_ids, category_ids;  // sorted: the evaluation order
    std::vector<std::uint32_t> gt_order, dt_order;  // sorted by (image, category, input position)
    std::vector<std::uint32_t> gt_image, gt_category, dt_image, dt_category;  // ranks, by input position
    std::vector<coco_pair> pairs;                   // pairs with a ground truth or a detection
    std::vector<std::size_t> category_kept;         // K + 1 offsets into the kept slots
    std::size_t kept = 0;
};

inline std::string coco_box_string(const coco_box& b) {
    return concat("[", b[0], ", ", b[1], ", ", b[2], ", ", b[3], "]");
}

// Positions 0..n-1 ordered by (image, category, position): a stable counting sort by category,
// then one by image.
inline std::vector<std::uint32_t> order_by_pair(const std::vector<std::uint32_t>& category,
                                                const std::vector<std::uint32_t>& image, std::size_t n_categories,
                                                std::size_t n_images) {
    const std::size_t n = category.size();
    std::vector<std::uint32_t> by_category(n), out(n);
    std::vector<std::size_t> next(n_categories + 1, 0);
    for (std::size_t i = 0; i < n; ++i) ++next[category[i] + 1];
    for (std::size_t k = 0; k < n_categories; ++k) next[k + 1] += next[k];
    for (std::size_t i = 0; i < n; ++i) by_category[next[category[i]]++] = static_cast<std::uint32_t>(i);
    next.assign(n_images + 1, 0);
    for (std::size_t i = 0; i < n; ++i) ++next[image[i] + 1];
    for (std::size_t b = 0; b < n_images; ++b) next[b + 1] += next[b];
    for (const std::uint32_t i : by_category) out[next[image[i]]++] = i;
    return out;
}

inline coco_groups group_coco(const coco_ground_truth& gt, std::span<const coco_detection> dets, index_t max_kept,
                              const char* where) {
    constexpr std::size_t limit = std::numeric_limits<std::int32_t>::max();
    require(gt.images.size() < limit, where, "ground_truth.images", "fewer than 2^31", gt.images.size());
    require(gt.categories.size() < limit, where, "ground_truth.categories", "fewer than 2^31", gt.categories.size());
    require(gt.annotations.size() < limit, where, "ground_truth.annotations", "fewer than 2^31",
            gt.annotations.size());
    require(dets.size() < limit, where, "detections", "fewer than 2^31", dets.size());

    std::vector<coco_id> ids(gt.images.size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = gt.images[i].id;
    const coco_id_index images(ids, where, "ground_truth.images");
    ids.resize(gt.categories.size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = gt.categories[i].id;
    const coco_id_index categories(ids, where, "ground_truth.categories");

    coco_groups g;
    g.image_ids = images.sorted_ids();
    g.category_ids = categories.sorted_ids();
    const std::size_t n_images = g.image_ids.size(), n_categories = g.category_ids.size();
    const auto finite_box = [](const coco_box& b) {
        return std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
    };

    // Ground truth: an annotation must name a known image and category (pycocotools would drop it).
    const std::size_t n_gt = gt.annotations.size();
    g.gt_image.resize(n_gt);
    g.gt_category.resize(n_gt);
    for (std::size_t i = 0; i < n_gt; ++i) {
        const coco_annotation& a = gt.annotations[i];
        const auto name = [&](const char* field) { return concat("ground_truth.annotations[", i, "].", field); };
        const index_t img = images.find(a.image_id), cat = categories.find(a.category_id);
        if (img < 0) fail(where, name("image_id"), "the id of an image in ground_truth.images", a.image_id);
        if (cat < 0) fail(where, name("category_id"), "the id of a category in ground_truth.categories", a.category_id);
        // (messages are built only on failure: these loops see every detection)
        if (!finite_box(a.bbox)) fail(where, name("bbox"), "4 finite numbers", coco_box_string(a.bbox));
        if (!std::isfinite(a.area)) fail(where, name("area"), "finite", a.area);
        g.gt_image[i] = static_cast<std::uint32_t>(img);
        g.gt_category[i] = static_cast<std::uint32_t>(cat);
    }
    // Detections: pycocotools' loadRes asserts that every image id is known; a category unknown
    // to the ground truth (its evaluation drops those silently) is rejected here too: it is
    // almost always a label-mapping mistake (contiguous 0..79 labels against COCO's 1..90 ids).
    const std::size_t n_dt = dets.size();
    g.dt_image.resize(n_dt);
    g.dt_category.resize(n_dt);
    for (std::size_t i = 0; i < n_dt; ++i) {
        const coco_detection& d = dets[i];
        const index_t img = images.find(d.image_id), cat = categories.find(d.category_id);
        if (img < 0)
            fail(where, concat("detections[", i, "].image_id"), "the id of an image in ground_truth.images", d.image_id);
        if (cat < 0)
            fail(where, concat("detections[", i, "].category_id"), "the id of a category in ground_truth.categories",
                 d.category_id);
        if (!finite_box(d.bbox))
            fail(where, concat("detections[", i, "].bbox"), "4 finite numbers", coco_box_string(d.bbox));
        if (!std::isfinite(d.score)) fail(where, concat("detections[", i, "].score"), "finite", d.score);
        g.dt_image[i] = static_cast<std::uint32_t>(img);
        g.dt_category[i] = static_cast<std::uint32_t>(cat);
    }

    g.gt_order = order_by_pair(g.gt_category, g.gt_image, n_categories, n_images);
    g.dt_order = order_by_pair(g.dt_category, g.dt_image, n_categories, n_images);

    // Merge the runs of equal (image, category) of both lists into the pair list.
    const auto key = [n_categories](std::uint32_t img, std::uint32_t cat) {
        return static_cast<std::uint64_t>(img) * n_categories + cat;
    };
    constexpr std::uint64_t none = std::numeric_limits<std::uint64_t>::max();
    std::size_t gi = 0, di = 0;
    g.category_kept.assign(n_categories + 1, 0);
    while (gi < n_gt || di < n_dt) {
        const std::uint64_t kg = gi < n_gt ? key(g.gt_image[g.gt_order[gi]], g.gt_category[g.gt_order[gi]]) : none;
        const std::uint64_t kd = di < n_dt ? key(g.dt_image[g.dt_order[di]], g.dt_category[g.dt_order[di]]) : none;
        const std::uint64_t k = std::min(kg, kd);
        coco_pair p{};
        p.image = static_cast<std::uint32_t>(k / n_categories);
        p.category = static_cast<std::uint32_t>(k % n_categories);
        p.gt_begin = static_cast<std::uint32_t>(gi);
        while (gi < n_gt && key(g.gt_image[g.gt_order[gi]], g.gt_category[g.gt_order[gi]]) == k) ++gi;
        p.gt_end = static_cast<std::uint32_t>(gi);
        p.dt_begin = static_cast<std::uint32_t>(di);
        while (di < n_dt && key(g.dt_image[g.dt_order[di]], g.dt_category[g.dt_order[di]]) == k) ++di;
        p.dt_end = static_cast<std::uint32_t>(di);
        g.category_kept[p.category + 1] += std::min<std::size_t>(p.dt_end - p.dt_begin, static_cast<std::size_t>(max_kept));
        g.pairs.push_back(p);
    }
    for (std::size_t k = 0; k < n_categories; ++k) g.category_kept[k + 1] += g.category_kept[k];
    g.kept = g.category_kept[n_categories];
    // Slots category-major; within a category, pairs come in image order.
    std::vector<std::size_t> next(g.category_kept.begin(), g.category_kept.end() - 1);
    for (coco_pair& p : g.pairs) {
        p.kept_begin = next[p.category];
        next[p.category] += std::min<std::size_t>(p.dt_end - p.dt_begin, static_cast<std::size_t>(max_kept));
    }
    return g;
}

}  // namespace focal::detail
