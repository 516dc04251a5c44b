// fuzz/fuzz_postprocess.cpp: RetinaNet post-processing of a small batch
// (retinanet/postprocess.hpp, retinanet/detail/top_candidates.hpp).
//
// Checked beyond "no crash":
//   * focal::error exactly for invalid parameters (the nested nms policy's included), negative
//     level counts, counts that do not sum to the anchors, negative image sizes;
//   * every image equals a brute-force pipeline written from the header's four steps (per level
//     the top max_candidates_per_level (anchor, class) pairs by logit, ties by flat index, among
//     those above the logit threshold; sigmoid score > float(score_threshold); decode; clip;
//     class-aware NMS (per_class, or torchvision's coordinate trick); the best capacity():
//     max_detections, or nms.max_detections when smaller), under exec::scalar, exec::simd and
//     exec::parallel, into outputs of exactly capacity() rows or a few more; and the single-image
//     postprocess() equals its image of the batch form;
//   * per image: count <= capacity(), labels in [0, K), scores in (score_threshold, 1] and
//     non-increasing, clipped coordinates NaN or inside the image, and finite for finite, bounded
//     inputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <focal/retinanet/postprocess.hpp>

#include "byte_reader.hpp"
#include "reference.hpp"

namespace {

using namespace focal_fuzz;
using focal::index_t;

struct batch_input {
    index_t batch = 0, anchors = 0, classes = 0;
    std::vector<index_t> per_level;
    std::vector<focal::image_size> sizes;
    std::vector<float> logits;  // B x A x K
    std::vector<float> deltas;  // B x A x 4
    std::vector<float> anchor_boxes;  // A x 4
};

struct detections {
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> labels;
    bool operator==(const detections& o) const {
        if (boxes.size() != o.boxes.size() || scores != o.scores || labels != o.labels) return false;
        for (std::size_t i = 0; i < boxes.size(); ++i)
            if (!same(boxes[i], o.boxes[i])) return false;
        return true;
    }
};

// The header's pipeline for image b, brute force.
detections reference(const focal::retinanet_postprocess& p, const batch_input& in, index_t b) {
    const index_t k = in.classes;
    // Scores are compared with float(score_threshold), as torch compares a float tensor with a number.
    const auto threshold = static_cast<float>(p.score_threshold);
    // logit_threshold(): the logit of the threshold less a margin; the exact test on the score follows.
    const float logit_min = threshold <= 0.0f ? -std::numeric_limits<float>::infinity()
                                              : static_cast<float>(std::log(double(threshold) / (1.0 - double(threshold))) - 1e-4);
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> labels;
    index_t level_begin = 0;
    for (const index_t count : in.per_level) {
        struct pair {
            float logit;
            std::int64_t flat;
        };
        std::vector<pair> pairs;
        for (index_t a = level_begin; a < level_begin + count; ++a)
            for (index_t c = 0; c < k; ++c) {
                const float x = in.logits[static_cast<std::size_t>((b * in.anchors + a) * k + c)];
                if (x > logit_min) pairs.push_back({x, (a - level_begin) * k + c});
            }
        std::sort(pairs.begin(), pairs.end(), [](const pair& x, const pair& y) {
            return x.logit > y.logit || (x.logit == y.logit && x.flat < y.flat);
        });
        if (static_cast<index_t>(pairs.size()) > p.max_candidates_per_level)
            pairs.resize(static_cast<std::size_t>(p.max_candidates_per_level));
        for (const pair& c : pairs) {
            const float score = 1.0f / (1.0f + std::exp(-c.logit));
            if (!(score > threshold)) continue;
            const index_t anchor = level_begin + c.flat / k;
            const auto d = box_at(in.deltas, b * in.anchors + anchor);
            const auto an = box_at(in.anchor_boxes, anchor);
            focal::box4<float> box = p.coder.decode(d, an);
            if (p.clip_to_image) {
                const float w = float(in.sizes[static_cast<std::size_t>(b)].width), h = float(in.sizes[static_cast<std::size_t>(b)].height);
                for (int i : {0, 2}) box[i] = std::min(std::max(box[i], 0.0f), w);
                for (int i : {1, 3}) box[i] = std::min(std::max(box[i], 0.0f), h);
            }
            boxes.insert(boxes.end(), {box[0], box[1], box[2], box[3]});
            scores.push_back(score);
            labels.push_back(c.flat % k);
        }
        level_begin += count;
    }
    const std::vector<std::int64_t> order = score_order(scores);
    const std::int64_t cap = p.nms.max_detections >= 0 && p.nms.max_detections < p.max_detections ? p.nms.max_detections : p.max_detections;
    FUZZ_CHECK(cap == p.capacity());
    const std::vector<std::int64_t> kept =
        p.nms.mode == focal::batched_mode::per_class
            ? greedy_reference(boxes, order, p.nms.iou_threshold, &labels, cap)
            : greedy_reference(torchvision_shifted(boxes, labels), order, p.nms.iou_threshold, nullptr, cap);
    detections out;
    for (const std::int64_t i : kept) {
        for (int c = 0; c < 4; ++c) out.boxes.push_back(boxes[static_cast<std::size_t>(4 * i + c)]);
        out.scores.push_back(scores[static_cast<std::size_t>(i)]);
        out.labels.push_back(labels[static_cast<std::size_t>(i)]);
    }
    return out;
}

// The batch postprocess into exactly-sized outputs (D rows per image); false on focal::error.
template <class Exec>
bool run_batch(const focal::retinanet_postprocess& p, const batch_input& in, index_t d, const Exec& exec,
               std::vector<detections>& out) {
    const index_t b = in.batch, a = in.anchors, k = in.classes;
    std::vector<float> boxes(static_cast<std::size_t>(b * d * 4), -1.0f), scores(static_cast<std::size_t>(b * d), -1.0f);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(b * d), -1);
    std::vector<std::int64_t> counts(static_cast<std::size_t>(b), -1);
    const focal::tensor3_view<const float> logits(in.logits.data(), b, a, k);
    const focal::tensor3_view<const float> deltas(in.deltas.data(), b, a, 4);
    const bool ok = succeeds([&] {
        focal::postprocess(p, logits, deltas, focal::make_view(in.anchor_boxes.data(), a, 4), std::span<const index_t>(in.per_level),
                           std::span<const focal::image_size>(in.sizes),
                           focal::batch_detections_output{focal::tensor3_view<float>(boxes.data(), b, d, 4),
                                                          focal::make_view(scores.data(), b, d), focal::make_view(labels.data(), b, d),
                                                          focal::make_view(counts.data(), b)},
                           exec);
    });
    if (!ok) return false;
    out.assign(static_cast<std::size_t>(b), {});
    for (index_t i = 0; i < b; ++i) {
        const std::int64_t count = counts[static_cast<std::size_t>(i)];
        FUZZ_CHECKF(count >= 0 && count <= p.capacity() && count <= d, "image %td: %lld detections\n", i,
                    static_cast<long long>(count));
        detections& det = out[static_cast<std::size_t>(i)];
        for (std::int64_t j = 0; j < count; ++j) {
            for (int c = 0; c < 4; ++c) det.boxes.push_back(boxes[static_cast<std::size_t>((i * d + j) * 4 + c)]);
            det.scores.push_back(scores[static_cast<std::size_t>(i * d + j)]);
            det.labels.push_back(labels[static_cast<std::size_t>(i * d + j)]);
        }
    }
    return true;
}

void check_image(const focal::retinanet_postprocess& p, const batch_input& in, index_t b, const detections& det,
                 bool bounded) {
    const auto size = in.sizes[static_cast<std::size_t>(b)];
    for (std::size_t j = 0; j < det.scores.size(); ++j) {
        FUZZ_CHECKF(det.labels[j] >= 0 && det.labels[j] < in.classes, "label %lld of %td classes\n",
                    static_cast<long long>(det.labels[j]), in.classes);
        const float s = det.scores[j];
        FUZZ_CHECKF(s > static_cast<float>(p.score_threshold) && s <= 1.0f, "score %.9g, threshold %.17g\n", double(s), p.score_threshold);
        if (j > 0) FUZZ_CHECK(det.scores[j - 1] >= s);
        for (int c = 0; c < 4; ++c) {
            const float v = det.boxes[4 * j + static_cast<std::size_t>(c)];
            if (p.clip_to_image) {
                const float limit = float(c % 2 == 0 ? size.width : size.height);
                FUZZ_CHECKF(std::isnan(v) || (v >= 0.0f && v <= limit), "clipped coordinate %g, image %td x %td\n", double(v),
                            size.height, size.width);
            }
            if (bounded) FUZZ_CHECKF(std::isfinite(v), "coordinate %g from bounded inputs\n", double(v));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    focal::retinanet_postprocess p;
    if (in.chance(64)) p = focal::retinanet_postprocess::torchvision();
    // A multiple of 1/20 as a double (0.05, not float(0.05): the host compares in float), else any float.
    p.score_threshold = in.chance(220) ? static_cast<double>(in.u8() % 20) / 20.0 : static_cast<double>(in.number<float>());
    p.max_candidates_per_level = in.chance(250) ? static_cast<index_t>(in.u8() % 13) : -1;
    p.nms.iou_threshold = in.unit_threshold();
    p.max_detections = in.chance(250) ? static_cast<index_t>(in.u8() % 13) : -1;
    if (in.chance(64)) p.nms.mode = p.nms.mode == focal::batched_mode::torchvision ? focal::batched_mode::per_class
                                                                                    : focal::batched_mode::torchvision;
    if (in.chance(48)) {
        p.coder.wx = p.coder.wy = static_cast<float>(1 + in.u8() % 16);
        p.coder.ww = p.coder.wh = static_cast<float>(1 + in.u8() % 8);
        p.coder.clamp = in.chance(220) ? static_cast<float>(1 + in.u8() % 16) / 2.0f : in.number<float>();
    }
    p.clip_to_image = !in.chance(40);
    // One byte: output rows beyond capacity() (byte % 3), and the nested NMS's own cap (byte / 3 in
    // [1, 16]: nms.max_detections in [-2, 13], -2 invalid; else none, as the seeds were written).
    const std::uint8_t rows_byte = in.u8();
    const index_t extra_rows = rows_byte % 3;
    if (rows_byte / 3 >= 1 && rows_byte / 3 <= 16) p.nms.max_detections = static_cast<index_t>(rows_byte / 3) - 3;

    batch_input x;
    x.batch = 1 + in.u8() % 3;
    x.classes = in.u8() % 7;
    const int levels = 1 + in.u8() % 4;
    for (int l = 0; l < levels; ++l) x.per_level.push_back(in.chance(252) ? static_cast<index_t>(in.count(8, 40)) : -1);
    for (const index_t c : x.per_level) x.anchors += std::max<index_t>(c, 0);
    const bool mismatch = in.chance(4);
    for (index_t b = 0; b < x.batch; ++b) {
        const index_t h = in.chance(250) ? 4 * in.u8() : -1, w = in.chance(250) ? 4 * in.u8() : -1;
        x.sizes.push_back({h, w});
    }
    bool bounded = true;  // every input finite and moderate: boxes must come out finite
    x.anchor_boxes.resize(static_cast<std::size_t>(4 * x.anchors));
    for (index_t a = 0; a < x.anchors; ++a) {
        read_box(in, &x.anchor_boxes[static_cast<std::size_t>(4 * a)]);
        for (int c = 0; c < 4; ++c) bounded = bounded && std::fabs(x.anchor_boxes[static_cast<std::size_t>(4 * a + c)]) <= 1e6f;
    }
    x.logits.resize(static_cast<std::size_t>(x.batch * x.anchors * x.classes));
    for (float& v : x.logits) v = in.chance(230) ? static_cast<float>(static_cast<std::int8_t>(in.u8())) / 8.0f : in.number<float>();
    x.deltas.resize(static_cast<std::size_t>(x.batch * x.anchors * 4));
    for (std::size_t i = 0; i < x.deltas.size(); ++i) {
        float& v = x.deltas[i];
        v = in.chance(220) ? static_cast<float>(static_cast<std::int8_t>(in.u8())) / 32.0f : in.number<float>();
        bounded = bounded && (i % 4 < 2 ? std::fabs(v) <= 1e6f : std::isfinite(v));
    }
    bounded = bounded && p.coder.clamp <= 20.0f;
    // Anchors that the counts do not describe: the sum check must catch it.
    if (mismatch && !x.per_level.empty()) x.per_level.back() += x.per_level.back() > 0 ? -1 : 1;

    const bool negative_level = std::any_of(x.per_level.begin(), x.per_level.end(), [](index_t c) { return c < 0; });
    const bool params_valid = p.score_threshold >= 0.0 && p.score_threshold < 1.0 && p.max_candidates_per_level >= 0 &&
                              p.nms.iou_threshold >= 0.0 && p.nms.iou_threshold <= 1.0 && p.nms.max_detections >= -1 &&
                              p.max_detections >= 0 && std::isfinite(p.coder.clamp) && p.coder.clamp > 0.0f;
    bool sizes_valid = true;
    for (const auto& s : x.sizes) sizes_valid = sizes_valid && s.height >= 0 && s.width >= 0;
    index_t sum = 0;
    for (const index_t c : x.per_level) sum += c;
    const bool valid = params_valid && !negative_level && sum == x.anchors && sizes_valid;
    const index_t d = std::max<index_t>(p.capacity(), 0) + extra_rows;  // the rows an output needs, or a few more

    std::vector<detections> scalar, simd, par;
    const bool ok = run_batch(p, x, d, focal::exec::scalar, scalar);
    FUZZ_CHECKF(ok == valid, "batch postprocess %s; parameters valid %d, levels %d, sum %td of %td, sizes %d\n",
                ok ? "succeeded" : "failed", params_valid, !negative_level, sum, x.anchors, sizes_valid);
    if (!ok) return 0;
    FUZZ_CHECK(run_batch(p, x, d, focal::exec::simd, simd) && simd == scalar);
    FUZZ_CHECK(run_batch(p, x, d, parallel(), par) && par == scalar);

    for (index_t b = 0; b < x.batch; ++b) {
        const detections& det = scalar[static_cast<std::size_t>(b)];
        const detections want = reference(p, x, b);
        FUZZ_CHECKF(det == want, "image %td: %zu detections, the reference gives %zu\n", b, det.scores.size(),
                    want.scores.size());
        check_image(p, x, b, det, bounded);
    }

    // One image alone equals its row of the batch.
    std::vector<float> boxes(static_cast<std::size_t>(d * 4)), scores(static_cast<std::size_t>(d));
    std::vector<std::int64_t> labels(static_cast<std::size_t>(d));
    index_t count = -1;
    FUZZ_CHECK(succeeds([&] {
        count = focal::postprocess(p, focal::make_view(x.logits.data(), x.anchors, x.classes),
                                   focal::make_view(x.deltas.data(), x.anchors, 4),
                                   focal::make_view(x.anchor_boxes.data(), x.anchors, 4), std::span<const index_t>(x.per_level),
                                   x.sizes[0],
                                   focal::detections_output{focal::make_view(boxes.data(), d, 4),
                                                            focal::make_view(scores.data(), d),
                                                            focal::make_view(labels.data(), d)},
                                   focal::exec::simd);
    }));
    detections single;
    for (index_t j = 0; j < count; ++j) {
        for (int c = 0; c < 4; ++c) single.boxes.push_back(boxes[static_cast<std::size_t>(4 * j + c)]);
        single.scores.push_back(scores[static_cast<std::size_t>(j)]);
        single.labels.push_back(labels[static_cast<std::size_t>(j)]);
    }
    FUZZ_CHECK(single == scalar[0]);
    return 0;
}
