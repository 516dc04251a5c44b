// fuzz/fuzz_nms.cpp: greedy, class-aware (batched) and Soft-NMS from bytes (nms/*.hpp).
//
// Checked beyond "no crash":
//   * the argument checks: a run fails with focal::error exactly when the threshold is outside
//     [0, 1] (or NaN), max_detections < -1, or a Soft-NMS sigma / score_threshold is invalid;
//   * greedy and per_class batched NMS equal a brute-force greedy NMS (the documented contract:
//     NaN scores never kept, score descending with ties in index order, IoU > t decided in double,
//     max_detections truncating), under exec::scalar, exec::simd and exec::parallel alike; hence kept
//     indices are valid, unique, ordered, count <= min(N, max_detections), and no two kept boxes (of
//     one class) have IoU > t;
//   * torchvision-mode batched NMS equals a brute-force NMS on torchvision's shifted boxes (N up
//     to its coordinate-trick limit), or else keeps the per_class set in score order;
//   * Soft-NMS under exec::scalar equals a brute-force Soft-NMS (linear decay: under exec::simd
//     too); for every policy, indices valid and unique, scores >= score_threshold, non-increasing,
//     never above the box's input score, the first pick the best candidate.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include <focal/nms.hpp>

#include "byte_reader.hpp"
#include "reference.hpp"

namespace {

using namespace focal_fuzz;
using focal::index_t;

bool valid_threshold(double t) { return t >= 0.0 && t <= 1.0; }

// keep[0 .. count) as a vector; the buffer has exactly the capacity the driver may fill.
template <class F>
std::vector<std::int64_t> kept_list(index_t capacity, const F& run, bool& ok) {
    std::vector<std::int64_t> keep(static_cast<std::size_t>(std::max<index_t>(capacity, 0)), -7);
    index_t count = -1;
    ok = succeeds([&] { count = run(focal::make_view(keep.data(), static_cast<index_t>(keep.size()))); });
    if (!ok) return {};
    FUZZ_CHECKF(count >= 0 && count <= capacity, "count %td, capacity %td\n", count, capacity);
    keep.resize(static_cast<std::size_t>(count));
    return keep;
}

template <class S>
void check_list(const std::vector<std::int64_t>& keep, const std::vector<S>& scores, bool stable) {
    std::set<std::int64_t> seen;
    for (std::size_t k = 0; k < keep.size(); ++k) {
        const std::int64_t i = keep[k];
        FUZZ_CHECKF(i >= 0 && i < static_cast<std::int64_t>(scores.size()), "kept index %lld of %zu\n",
                    static_cast<long long>(i), scores.size());
        FUZZ_CHECK(seen.insert(i).second);
        FUZZ_CHECK(!std::isnan(scores[static_cast<std::size_t>(i)]));
        if (k == 0) continue;
        const S a = scores[static_cast<std::size_t>(keep[k - 1])], b = scores[static_cast<std::size_t>(i)];
        FUZZ_CHECK(a >= b);
        if (stable) FUZZ_CHECK(a > b || keep[k - 1] < i);
    }
}

// No two kept boxes (of one class, when classes are given) have IoU > threshold.
template <class T>
void check_separated(const std::vector<std::int64_t>& keep, const std::vector<T>& boxes, double threshold,
                     const std::vector<std::int64_t>* classes) {
    for (std::size_t a = 0; a < keep.size(); ++a)
        for (std::size_t b = 0; b < a; ++b) {
            if (classes && (*classes)[static_cast<std::size_t>(keep[a])] != (*classes)[static_cast<std::size_t>(keep[b])]) continue;
            FUZZ_CHECKF(!iou_above(box_at(boxes, keep[b]), box_at(boxes, keep[a]), threshold), "kept boxes %lld and %lld overlap\n",
                        static_cast<long long>(keep[b]), static_cast<long long>(keep[a]));
        }
}

template <class T, class S>
struct problem {
    index_t n = 0;
    std::vector<T> boxes;  // n x 4, row-major
    std::vector<S> scores;
    std::vector<std::int64_t> classes;
    double threshold = 0.5;
    std::int64_t max_detections = -1;
    int layout = 0;
};

template <class T, class S>
void greedy_and_batched(const problem<T, S>& p, byte_reader& in) {
    const strided_matrix<T> boxes(p.boxes, p.n, 4, p.layout);
    const auto bv = boxes.const_view();
    const auto sv = focal::make_view(p.scores.data(), p.n);
    const auto cv = focal::make_view(p.classes.data(), p.n);
    const bool valid = valid_threshold(p.threshold) && p.max_detections >= -1;
    const index_t capacity = p.max_detections >= 0 && p.max_detections < p.n ? p.max_detections : p.n;
    const std::vector<std::int64_t> order = score_order(p.scores);

    // Greedy.
    const focal::greedy_nms greedy{.iou_threshold = p.threshold, .max_detections = p.max_detections};
    bool ok = false;
    const auto g_scalar = kept_list(capacity, [&](auto keep) { return focal::nms(greedy, bv, sv, keep, focal::exec::scalar); }, ok);
    FUZZ_CHECK(ok == valid);
    if (!ok) return;
    const auto g_simd = kept_list(capacity, [&](auto keep) { return focal::nms(greedy, bv, sv, keep, focal::exec::simd); }, ok);
    FUZZ_CHECK(ok && g_simd == g_scalar);
    const auto g_ref = greedy_reference(p.boxes, order, p.threshold, nullptr, p.max_detections);
    FUZZ_CHECKF(g_scalar == g_ref, "greedy: %zu kept, the reference keeps %zu\n", g_scalar.size(), g_ref.size());
    check_list(g_scalar, p.scores, true);
    check_separated(g_scalar, p.boxes, p.threshold, nullptr);

    // Batched, per class.
    focal::batched_nms batched{.iou_threshold = p.threshold, .max_detections = p.max_detections};
    const auto b_scalar =
        kept_list(capacity, [&](auto keep) { return focal::nms(batched, bv, sv, cv, keep, focal::exec::scalar); }, ok);
    FUZZ_CHECK(ok);
    const auto b_simd = kept_list(capacity, [&](auto keep) { return focal::nms(batched, bv, sv, cv, keep, focal::exec::simd); }, ok);
    FUZZ_CHECK(ok && b_simd == b_scalar);
    const auto b_par = kept_list(capacity, [&](auto keep) { return focal::nms(batched, bv, sv, cv, keep, parallel()); }, ok);
    FUZZ_CHECK(ok && b_par == b_scalar);
    const auto b_ref = greedy_reference(p.boxes, order, p.threshold, &p.classes, p.max_detections);
    FUZZ_CHECKF(b_scalar == b_ref, "per_class: %zu kept, the reference keeps %zu\n", b_scalar.size(), b_ref.size());
    check_list(b_scalar, p.scores, true);
    check_separated(b_scalar, p.boxes, p.threshold, &p.classes);

    // Batched, torchvision's rules; the coordinate trick up to a limit the input picks.
    batched.mode = focal::batched_mode::torchvision;
    batched.torchvision_trick_max_boxes = in.chance(128) ? 1000 : static_cast<index_t>(in.range(0, p.n + 1));
    const auto t_scalar =
        kept_list(capacity, [&](auto keep) { return focal::nms(batched, bv, sv, cv, keep, focal::exec::scalar); }, ok);
    FUZZ_CHECK(ok);
    const auto t_simd = kept_list(capacity, [&](auto keep) { return focal::nms(batched, bv, sv, cv, keep, focal::exec::simd); }, ok);
    FUZZ_CHECK(ok && t_simd == t_scalar);
    check_list(t_scalar, p.scores, false);
    if (p.n <= batched.torchvision_trick_max_boxes) {
        const std::vector<T> shifted = torchvision_shifted(p.boxes, p.classes);
        const auto t_ref = greedy_reference(shifted, order, p.threshold, nullptr, p.max_detections);
        FUZZ_CHECKF(t_scalar == t_ref, "torchvision trick: %zu kept, the reference keeps %zu\n", t_scalar.size(), t_ref.size());
    } else {
        // Its per-class loop: the per_class set, in an (unstable) score order, then truncated.
        const auto all = greedy_reference(p.boxes, order, p.threshold, &p.classes, -1);
        FUZZ_CHECK(static_cast<index_t>(t_scalar.size()) == std::min<index_t>(capacity, static_cast<index_t>(all.size())));
        for (std::size_t k = 0; k < t_scalar.size(); ++k)
            FUZZ_CHECK(p.scores[static_cast<std::size_t>(t_scalar[k])] == p.scores[static_cast<std::size_t>(all[k])]);
        if (p.max_detections < 0) FUZZ_CHECK(std::set<std::int64_t>(t_scalar.begin(), t_scalar.end()) ==
                                         std::set<std::int64_t>(all.begin(), all.end()));
    }
}

// Soft-NMS by the book: pick the best live score (ties: lower index), decay every live box by
// weight(IoU) unless the pick or the box is inert (no finite, positive area), drop those below
// the floor. Arithmetic in T, exp from <cmath> (as exec::scalar).
template <class T, class S>
void soft_reference(const problem<T, S>& p, const focal::soft_nms& policy, std::vector<std::int64_t>& keep,
                    std::vector<T>& kept_scores) {
    const T floor = static_cast<T>(policy.score_threshold);
    const T t = float_threshold_below<T>(policy.iou_threshold);
    const auto n = static_cast<std::size_t>(p.n);
    std::vector<T> score(n);
    std::vector<char> live(n, 0), active(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        score[i] = static_cast<T>(p.scores[i]);
        live[i] = !std::isnan(p.scores[i]) && score[i] >= floor;
        const T a = focal::area(box_at(p.boxes, static_cast<std::int64_t>(i)));
        active[i] = a > T(0) && a < std::numeric_limits<T>::infinity();
    }
    while (policy.max_detections < 0 || static_cast<index_t>(keep.size()) < policy.max_detections) {
        std::size_t best = n;
        for (std::size_t i = 0; i < n; ++i)
            if (live[i] && (best == n || score[i] > score[best])) best = i;
        if (best == n) return;
        keep.push_back(static_cast<std::int64_t>(best));
        kept_scores.push_back(score[best]);
        live[best] = 0;
        if (!active[best]) continue;
        const auto pb = box_at(p.boxes, static_cast<std::int64_t>(best));
        for (std::size_t j = 0; j < n; ++j) {
            if (!live[j] || !active[j]) continue;
            const T v = focal::iou(pb, box_at(p.boxes, static_cast<std::int64_t>(j)));
            const T w = policy.weight(v, t);
            const T decayed = w == T(0) ? T(0) : score[j] * w;
            if (decayed < floor) live[j] = 0;
            else score[j] = decayed;
        }
    }
}

template <class T, class S>
void soft(const problem<T, S>& p, byte_reader& in) {
    focal::soft_nms policy;
    policy.decay = in.flag() ? focal::soft_decay::linear : focal::soft_decay::gaussian;
    policy.sigma = in.chance(200) ? static_cast<float>(in.range(1, 20)) / 10.0f : in.number<float>();
    policy.score_threshold = in.chance(200) ? static_cast<double>(in.range(0, 8)) / 16.0 : static_cast<double>(in.number<float>());
    policy.iou_threshold = p.threshold;
    policy.max_detections = p.max_detections;
    const bool valid = valid_threshold(p.threshold) && p.max_detections >= -1 && std::isfinite(policy.sigma) &&
                       policy.sigma > 0.0f && std::isfinite(policy.score_threshold) && policy.score_threshold >= 0.0;
    const index_t capacity = p.max_detections >= 0 && p.max_detections < p.n ? p.max_detections : p.n;

    const strided_matrix<T> boxes(p.boxes, p.n, 4, p.layout);
    const auto sv = focal::make_view(p.scores.data(), p.n);
    auto run = [&](const auto& exec, std::vector<std::int64_t>& keep, std::vector<T>& out) {
        keep.assign(static_cast<std::size_t>(capacity), -7);
        out.assign(static_cast<std::size_t>(capacity), T(-7));
        index_t count = -1;
        const bool ok = succeeds([&] {
            count = focal::nms(policy, boxes.const_view(), sv, focal::make_view(keep.data(), capacity),
                               focal::make_view(out.data(), capacity), exec);
        });
        if (!ok) return false;
        FUZZ_CHECK(count >= 0 && count <= capacity);
        keep.resize(static_cast<std::size_t>(count));
        out.resize(static_cast<std::size_t>(count));
        return true;
    };
    std::vector<std::int64_t> k_scalar, k_simd;
    std::vector<T> s_scalar, s_simd;
    const bool ok = run(focal::exec::scalar, k_scalar, s_scalar);
    FUZZ_CHECK(ok == valid);
    if (!ok) return;
    FUZZ_CHECK(run(focal::exec::simd, k_simd, s_simd));

    std::vector<std::int64_t> k_ref;
    std::vector<T> s_ref;
    soft_reference(p, policy, k_ref, s_ref);
    if (k_scalar != k_ref || s_scalar != s_ref) {
        print_list("soft-NMS picks", k_scalar), print_list("scores", s_scalar);
        print_list("reference picks", k_ref), print_list("scores", s_ref);
        print_list("input scores", p.scores), print_list("boxes", p.boxes);
    }
    FUZZ_CHECKF(k_scalar == k_ref && s_scalar == s_ref, "soft-NMS: %zu picks, the reference makes %zu\n",
                k_scalar.size(), k_ref.size());
    if (policy.decay == focal::soft_decay::linear) FUZZ_CHECK(k_simd == k_scalar && s_simd == s_scalar);

    const T floor = static_cast<T>(policy.score_threshold);
    for (const auto* list : {&k_scalar, &k_simd}) {
        const auto& kept_scores = list == &k_scalar ? s_scalar : s_simd;
        std::set<std::int64_t> seen;
        for (std::size_t k = 0; k < list->size(); ++k) {
            const std::int64_t i = (*list)[k];
            FUZZ_CHECK(i >= 0 && i < p.n && seen.insert(i).second);
            const T s = kept_scores[k];
            FUZZ_CHECK(s >= floor);  // NaN fails
            FUZZ_CHECK(s <= static_cast<T>(p.scores[static_cast<std::size_t>(i)]));
            if (k > 0) FUZZ_CHECK(kept_scores[k - 1] >= s);
        }
        // The first pick is the best candidate (nothing has decayed yet).
        if (!list->empty()) {
            const auto order = score_order(p.scores);
            std::int64_t first = -1;
            for (const std::int64_t i : order)
                if (static_cast<T>(p.scores[static_cast<std::size_t>(i)]) >= floor) {
                    first = i;
                    break;
                }
            FUZZ_CHECK(static_cast<T>(p.scores[static_cast<std::size_t>((*list)[0])]) ==
                       static_cast<T>(p.scores[static_cast<std::size_t>(first)]));
        }
    }
}

template <class T, class S>
void run(byte_reader& in) {
    problem<T, S> p;
    p.threshold = in.unit_threshold();
    const std::uint8_t limit = in.u8();
    p.layout = in.u8() % 3;
    const std::uint8_t class_mode = in.u8();
    p.n = static_cast<index_t>(in.count(40, 300, 6));
    p.max_detections = limit < 150 ? -1 : limit < 250 ? static_cast<std::int64_t>(limit % (p.n + 2)) : -2 - (limit % 2);
    p.boxes.resize(static_cast<std::size_t>(4 * p.n));
    p.scores.resize(static_cast<std::size_t>(p.n));
    p.classes.resize(static_cast<std::size_t>(p.n));
    for (std::size_t i = 0; i < static_cast<std::size_t>(p.n); ++i) {
        read_box(in, &p.boxes[4 * i]);
        p.scores[i] = in.score<S>();
        if (class_mode < 200) p.classes[i] = in.u8() % (1 + class_mode % 4);
        else if (class_mode < 240) p.classes[i] = in.range(-3, 3);
        else p.classes[i] = static_cast<std::int64_t>(in.u64());  // sparse labels: the sorting path
    }
    greedy_and_batched(p, in);
    soft(p, in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    switch (in.u8() % 4) {
        case 0: run<float, float>(in); break;
        case 1: run<double, double>(in); break;
        case 2: run<float, double>(in); break;
        default: run<double, float>(in); break;
    }
    return 0;
}
