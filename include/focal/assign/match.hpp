// focal/assign/match.hpp: match anchors to ground truth, IoU fused into the matcher.
//
//   match_anchors(matcher, anchors /*N x 4*/, gt_boxes /*M x 4*/, match_output{matches /*N*/}, exec)
//   match_anchors(matcher, anchors, gt_boxes, crowd_boxes /*K x 4*/, match_output{matches, max_iou}, exec)
// writes one code per anchor (max_iou_matcher.hpp): gt index, -1 background, -2 ignored; the
// optional out.max_iou gets each anchor's best IoU (0 without ground truth, NaN for a non-finite
// anchor). Boxes are
// xyxy; matches may be any signed integer type (int64 like torch, int32, ...). IoU is computed in
// float for float inputs (double if either input is double), operation for operation as
// torchvision's box_iou, so the codes are torchvision's exactly.
//
// How: the N x M IoU matrix is never stored. Anchors are cut into blocks of 256, staged as a
// structure of arrays; SIMD runs across anchors, ground truth in the inner loop. A gt box that
// misses a block's bounding box has IoU exactly 0 with all its anchors and is skipped (the
// argmax starts at (0, gt 0), as torch.max's first-index rule gives for an all-zero column).
// Pass 1 writes the threshold codes and each block's highest IoU per gt; the gt maxima are the
// max over blocks. Pass 2 (low-quality matches) revisits only the blocks holding a gt's maximum,
// recomputes their IoUs with the same code (bit-identical) and promotes the anchors equal to it.
// Blocks are threaded; results do not depend on the thread count or the execution policy.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../box/box4.hpp"
#include "../box/overlap.hpp"
#include "../config.hpp"
#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/math.hpp"
#include "../core/host_packet.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "match_output.hpp"
#include "max_iou_matcher.hpp"

namespace focal {

namespace detail::assign_impl {

template <class B>
void check_match_boxes(const matrix_view<B>& boxes, const char* where, const char* what) {
    require_valid_extents(boxes, where, what);
    require_extent(boxes, 1, 4, where, what);
    require_data(boxes, where, what);
}

template <class B>
void require_finite_boxes(const matrix_view<B>& boxes, const char* where, const char* what) {
    for (index_t i = 0; i < boxes.extent(0); ++i)
        for (index_t c = 0; c < 4; ++c) {
            const double v = static_cast<double>(boxes(i, c));
            if (!std::isfinite(v)) fail(where, what, "finite", v, " at row ", i, ", column ", c);
        }
}

// Boxes as scalar arrays (coordinates and area), read by broadcast in the inner loop.
template <class T>
struct box_table {
    std::vector<T> x1, y1, x2, y2, area;
    template <class Ov, class B>
    box_table(const Ov& ov, const matrix_view<B>& boxes) {
        for (index_t i = 0; i < boxes.extent(0); ++i) {
            const box4<T> b{{T(boxes(i, 0)), T(boxes(i, 1)), T(boxes(i, 2)), T(boxes(i, 3))}};
            x1.push_back(b[0]);
            y1.push_back(b[1]);
            x2.push_back(b[2]);
            y2.push_back(b[3]);
            area.push_back(ov.area(b));
        }
    }
    index_t size() const noexcept { return static_cast<index_t>(x1.size()); }
};

inline constexpr index_t match_block = 256;  // anchors per block: the unit of pruning and of ties

template <class T, class Ov, class TA, class TM, class TI>
struct match_job {
    using code_type = std::remove_const_t<TM>;
    using iou_type = std::remove_const_t<TI>;
    Ov ov;
    max_iou_matcher matcher;
    matrix_view<TA> anchors;
    box_table<T> gt, crowd;
    vector_view<TM> matches;
    vector_view<TI> max_iou;
    index_t n, m;
    T* block_max;  // pass 1 output: n_blocks x m
};

template <class P, class T>
struct match_scratch {
    std::vector<T> x1, y1, x2, y2, area, finite, lane_a, lane_b;
    std::vector<index_t> active, crowd_active;
    std::vector<T> active_index;  // active gt indices as T: the argmax packet's values
    std::vector<P> gmax;
    std::vector<T> targets;
    match_scratch(index_t m, index_t width)
        : x1(static_cast<std::size_t>(match_block + width)),
          y1(x1.size()),
          x2(x1.size()),
          y2(x1.size()),
          area(x1.size()),
          finite(x1.size()),
          lane_a(static_cast<std::size_t>(width)),
          lane_b(static_cast<std::size_t>(width)),
          gmax(static_cast<std::size_t>(m)),
          targets(static_cast<std::size_t>(m)) {}
};

// One block of anchors. Pass 1 (LowQuality = false): codes, max_iou, block maxima. Pass 2:
// anchors whose IoU equals targets[j] for some gt j (NaN: not a target) are promoted.
template <bool LowQuality, class P, class T, class Job>
void match_one_block(const Job& job, index_t b, const T* targets, match_scratch<P, T>& s) {
    using tr = packet_traits<P>;
    constexpr index_t width = tr::width;
    const index_t b0 = b * match_block, cnt = std::min(job.n, b0 + match_block) - b0;
    const index_t padded = (cnt + width - 1) / width * width;

    // Stage the block as a structure of arrays, padded with copies of its last anchor (no
    // special lanes); then areas, finiteness and the bounding box of the finite anchors.
    if (job.anchors.stride(1) == 1 && job.anchors.stride(0) == 4) {
        const auto* p = &job.anchors(b0, 0);
        for (index_t k = 0; k < cnt; ++k) {
            s.x1[k] = T(p[4 * k]);
            s.y1[k] = T(p[4 * k + 1]);
            s.x2[k] = T(p[4 * k + 2]);
            s.y2[k] = T(p[4 * k + 3]);
        }
    } else {
        for (index_t k = 0; k < cnt; ++k) {
            s.x1[k] = T(job.anchors(b0 + k, 0));
            s.y1[k] = T(job.anchors(b0 + k, 1));
            s.x2[k] = T(job.anchors(b0 + k, 2));
            s.y2[k] = T(job.anchors(b0 + k, 3));
        }
    }
    for (index_t k = cnt; k < padded; ++k) {
        s.x1[k] = s.x1[cnt - 1];
        s.y1[k] = s.y1[cnt - 1];
        s.x2[k] = s.x2[cnt - 1];
        s.y2[k] = s.y2[cnt - 1];
    }
    using mask = decltype(P() > P());
    const P zero(T(0)), one(T(1)), neg_code(static_cast<T>(background_label));
    const P inf(std::numeric_limits<T>::infinity()), minus_inf(-std::numeric_limits<T>::infinity());
    P lo_x = inf, lo_y = inf, hi_x = minus_inf, hi_y = minus_inf;
    for (index_t k = 0; k < padded; k += width) {
        const box4<P> a{{tr::load(&s.x1[k]), tr::load(&s.y1[k]), tr::load(&s.x2[k]), tr::load(&s.y2[k])}};
        tr::store(&s.area[k], job.ov.area(a));
        const mask finite = finite_box(a);
        tr::store(&s.finite[k], math::select(finite, one, zero));
        lo_x = math::min(lo_x, math::select(finite, a[0], inf));
        lo_y = math::min(lo_y, math::select(finite, a[1], inf));
        hi_x = math::max(hi_x, math::select(finite, a[2], minus_inf));
        hi_y = math::max(hi_y, math::select(finite, a[3], minus_inf));
    }
    auto reduce = [&](const P& v, bool lowest) {
        tr::store(s.lane_a.data(), v);
        double r = static_cast<double>(s.lane_a[0]);
        for (index_t l = 1; l < width; ++l)
            r = lowest ? std::min<double>(r, s.lane_a[l]) : std::max<double>(r, s.lane_a[l]);
        return r;
    };
    const double bx1 = reduce(lo_x, true), by1 = reduce(lo_y, true);
    const double bx2 = reduce(hi_x, false), by2 = reduce(hi_y, false);
    // A box that misses the bounding box (by a pixel more with +1) intersects no anchor here.
    // Tested on differences, as the IoU computes them: bx2 + margin would round the margin away
    // beyond 2^52, where min(x2) - max(x1) + 1 is still 1 for two equal huge point boxes. No finite
    // anchor: bx1 - bx2 = inf; with +1 an anchor inverted by under a pixel is not empty.
    const double margin = 2 * std::remove_cvref_t<decltype(job.ov)>::pixel;
    auto may_overlap = [&](const box_table<T>& t, index_t j) {
        return bx1 - bx2 <= margin && !(double(t.x1[j]) - bx2 >= margin || bx1 - double(t.x2[j]) >= margin ||
                               double(t.y1[j]) - by2 >= margin || by1 - double(t.y2[j]) >= margin);
    };
    s.active.clear();
    for (index_t j = 0; j < job.m; ++j)
        if (may_overlap(job.gt, j) || (LowQuality && !std::isnan(targets[j]))) s.active.push_back(j);
    const std::size_t na = s.active.size();
    s.active_index.assign(s.active.begin(), s.active.end());
    if constexpr (!LowQuality) {
        for (std::size_t q = 0; q < na; ++q) s.gmax[q] = P(T(0));
        s.crowd_active.clear();
        for (index_t c = 0; c < job.crowd.size(); ++c)
            if (may_overlap(job.crowd, c)) s.crowd_active.push_back(c);
    }

    for (index_t k = 0; k < cnt; k += width) {
        const box4<P> a{{tr::load(&s.x1[k]), tr::load(&s.y1[k]), tr::load(&s.x2[k]), tr::load(&s.y2[k])}};
        const P area_a = tr::load(&s.area[k]);
        P best = zero, idx = zero;
        mask eq = zero != zero;
        for (std::size_t q = 0; q < na; ++q) {
            const index_t j = s.active[q];
            const box4<P> g{{P(job.gt.x1[j]), P(job.gt.y1[j]), P(job.gt.x2[j]), P(job.gt.y2[j])}};
            const P iou = job.ov.iou(a, g, area_a, P(job.gt.area[j]));
            const mask better = iou > best;  // strict: the first gt keeps a tie (torch.max)
            best = math::select(better, iou, best);
            idx = math::select(better, P(s.active_index[q]), idx);
            if constexpr (LowQuality) {
                eq = eq | (iou == P(targets[j]));
            } else {
                s.gmax[q] = math::select(iou > s.gmax[q], iou, s.gmax[q]);
            }
        }
        const mask finite = tr::load(&s.finite[k]) != zero;
        const index_t lanes = std::min(width, cnt - k);
        if constexpr (!LowQuality) {
            // The crowd boxes matter only where the threshold rule gives negatives.
            mask near = zero != zero;
            if (!s.crowd_active.empty() &&
                math::any((job.m == 0 ? neg_code : job.matcher.threshold_code(best, idx)) == neg_code)) {
                for (index_t c : s.crowd_active) {
                    const box4<P> r{{P(job.crowd.x1[c]), P(job.crowd.y1[c]), P(job.crowd.x2[c]), P(job.crowd.y2[c])}};
                    near = near | job.matcher.near_crowd(job.ov.iof(a, r, area_a));
                }
            }
            const P code = job.matcher.anchor_code(job.m > 0, best, idx, near, finite);
            tr::store(s.lane_a.data(), code);
            if (job.matches.stride(0) == 1) {
                auto* out = &job.matches(b0 + k);
                for (index_t l = 0; l < lanes; ++l) out[l] = static_cast<typename Job::code_type>(s.lane_a[l]);
            } else {
                for (index_t l = 0; l < lanes; ++l)
                    job.matches(b0 + k + l) = static_cast<typename Job::code_type>(s.lane_a[l]);
            }
            if (!job.max_iou.is_null()) {
                tr::store(s.lane_b.data(), math::select(finite, best, P(std::numeric_limits<T>::quiet_NaN())));
                for (index_t l = 0; l < lanes; ++l)
                    job.max_iou(b0 + k + l) = static_cast<typename Job::iou_type>(s.lane_b[l]);
            }
        } else {
            const mask promote = job.matcher.promotes(best, eq, finite);
            if (math::any(promote)) {
                tr::store(s.lane_a.data(), idx);
                tr::store(s.lane_b.data(), math::select(promote, P(T(1)), zero));
                for (index_t l = 0; l < lanes; ++l)
                    if (s.lane_b[l] != T(0))
                        job.matches(b0 + k + l) = static_cast<typename Job::code_type>(s.lane_a[l]);
            }
        }
    }
    if constexpr (!LowQuality) {  // this block's highest IoU per gt (0 where skipped: all IoUs are 0)
        T* bm = job.block_max + b * job.m;
        std::fill(bm, bm + job.m, T(0));
        for (std::size_t q = 0; q < na; ++q) {
            tr::store(s.lane_a.data(), s.gmax[q]);
            T v = s.lane_a[0];
            for (index_t l = 1; l < width; ++l) v = s.lane_a[l] > v ? s.lane_a[l] : v;
            bm[s.active[q]] = v;
        }
    }
}

template <class T, class Ov, class TA, class TG, class TC, class TM, class TI, class Exec>
void match_impl(const max_iou_matcher& matcher, matrix_view<TA> anchors, matrix_view<TG> gt_boxes,
                matrix_view<TC> crowd_boxes, vector_view<TM> matches, vector_view<TI> max_iou, const Exec& exec) {
    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    constexpr index_t width = packet_traits<P>::width;
    const Ov ov{};
    const index_t n = anchors.extent(0), m = gt_boxes.extent(0);
    const index_t n_blocks = (n + match_block - 1) / match_block;
    std::vector<T> block_max(static_cast<std::size_t>(n_blocks * m));
    const match_job<T, Ov, TA, TM, TI> job{ov,
                                           matcher,
                                           anchors,
                                           box_table<T>(ov, gt_boxes),
                                           box_table<T>(ov, crowd_boxes),
                                           matches,
                                           max_iou,
                                           n,
                                           m,
                                           block_max.data()};
    const index_t work = match_block * std::max<index_t>(1, m + job.crowd.size());

    for_each_block(exec, n_blocks, 16, work, [&](index_t begin, index_t end) {
        match_scratch<P, T> s(m, width);
        for (index_t b = begin; b < end; ++b) match_one_block<false>(job, b, static_cast<const T*>(nullptr), s);
    });
    if (!matcher.allow_low_quality_matches || m == 0 || n == 0) return;

    // Each gt's highest IoU; the blocks that hold it (ties included, across blocks too).
    std::vector<T> gt_max(static_cast<std::size_t>(m), T(0));
    for (index_t b = 0; b < n_blocks; ++b)
        for (index_t j = 0; j < m; ++j) gt_max[j] = std::max(gt_max[j], block_max[b * m + j]);
    std::vector<char> promotes(static_cast<std::size_t>(m));
    for (index_t j = 0; j < m; ++j) promotes[j] = matcher.gt_promotes(gt_max[j]);
    std::vector<index_t> blocks;
    for (index_t b = 0; b < n_blocks; ++b)
        for (index_t j = 0; j < m; ++j)
            if (promotes[j] && block_max[b * m + j] == gt_max[j]) {
                blocks.push_back(b);
                break;
            }
    for_each_block(exec, static_cast<index_t>(blocks.size()), 4, match_block * m, [&](index_t begin, index_t end) {
        match_scratch<P, T> s(m, width);
        for (index_t q = begin; q < end; ++q) {
            const index_t b = blocks[q];
            for (index_t j = 0; j < m; ++j)
                s.targets[j] = promotes[j] && block_max[b * m + j] == gt_max[j] ? gt_max[j]
                                                                                : std::numeric_limits<T>::quiet_NaN();
            match_one_block<true>(job, b, s.targets.data(), s);
        }
    });
}

}  // namespace detail::assign_impl

// With crowd / ignore regions (crowd_boxes K x 4; an empty view: none).
template <class TA, class TG, class TC, class TM, class TI, class Exec = exec::default_policy>
    requires std::floating_point<std::remove_const_t<TA>> && std::floating_point<std::remove_const_t<TG>> &&
             std::signed_integral<TM> && std::floating_point<TI> && exec::is_policy_v<Exec>
void match_anchors(const max_iou_matcher& matcher, matrix_view<TA> anchors, matrix_view<TG> gt_boxes,
                   matrix_view<TC> crowd_boxes, const match_output<TM, TI, host_space>& out, const Exec& exec = {}) {
    constexpr const char* where = "focal::match_anchors";
    const vector_view<TM> matches = out.matches;
    const vector_view<TI> max_iou = out.max_iou;
    validate(matcher, where);
    detail::assign_impl::check_match_boxes(anchors, where, "anchors (N x 4)");
    detail::assign_impl::check_match_boxes(gt_boxes, where, "gt_boxes (M x 4)");
    if (!crowd_boxes.is_null()) detail::assign_impl::check_match_boxes(crowd_boxes, where, "crowd_boxes (K x 4)");
    const index_t n = anchors.extent(0), m = gt_boxes.extent(0);
    detail::check_match_output(out, n, where);
    using T = std::common_type_t<std::remove_const_t<TA>, std::remove_const_t<TG>>;
    detail::require(m <= static_cast<index_t>(std::numeric_limits<TM>::max()) && m <= (index_t(1) << 24), where,
                    "gt_boxes", "at most min(2^24, the largest value of out.matches' type) rows", m);
    detail::assign_impl::require_finite_boxes(gt_boxes, where, "gt_boxes");
    if (!crowd_boxes.is_null()) detail::assign_impl::require_finite_boxes(crowd_boxes, where, "crowd_boxes");
    using namespace detail::assign_impl;
    if (matcher.plus_one)
        match_impl<T, detail::overlap<true>>(matcher, anchors, gt_boxes, crowd_boxes, matches, max_iou, exec);
    else
        match_impl<T, detail::overlap<false>>(matcher, anchors, gt_boxes, crowd_boxes, matches, max_iou, exec);
}

// Without crowd boxes.
template <class TA, class TG, class TM, class TI, class Exec = exec::default_policy>
    requires exec::is_policy_v<Exec>
void match_anchors(const max_iou_matcher& matcher, matrix_view<TA> anchors, matrix_view<TG> gt_boxes,
                   const match_output<TM, TI, host_space>& out, const Exec& exec = {}) {
    match_anchors(matcher, anchors, gt_boxes, matrix_view<const float>{}, out, exec);
}

}  // namespace focal
