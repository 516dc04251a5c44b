// focal/nms/detail/box_chunks.hpp: the boxes an NMS compares, in small spatial chunks.
//
// Boxes with a finite, positive area are "active": only they can suppress or be suppressed. They
// are stored as a structure of arrays, grouped (by class; one group without classes), in Morton
// order of their centres within each group, and cut into chunks of 32 slots, each chunk with the
// bounding box of its live slots, and every 16 chunks (a "super" chunk) with the bounding box of
// all their slots. A kept box tests the super bounds, then the chunk bounds inside the supers it
// overlaps enough (chunk_may_overlap), then the IoU against the slots of those chunks, all SIMD.
//
// Every other box is "inert": a zero-area, inverted, NaN or infinite box has intersection 0 (or
// NaN, or a union of inf / NaN) with everything, so its IoU is 0 or NaN, never > a threshold in
// [0, 1]: it neither suppresses nor is suppressed. It gets no slot.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../box/box4.hpp"
#include "../../box/format.hpp"
#include "../../core/math.hpp"
#include "../../core/packet.hpp"
#include "../../core/view.hpp"
#include "radix_sort.hpp"

namespace focal::detail {

template <class T>
struct box_chunks {
    static constexpr index_t chunk = 32;  // slots per chunk: a multiple of every packet width
    static constexpr index_t super = 16;  // chunks per super chunk: likewise

    std::vector<T> x1, y1, x2, y2, area;  // per slot; padding slots are (0, 0, 0, 0)
    std::vector<std::uint32_t> box;       // per slot: the box's index; padding: no_box
    std::vector<T> bx1, by1, bx2, by2;    // per chunk: bounds of its live slots, (0, 0, 0, 0) if none
    std::vector<T> sx1, sy1, sx2, sy2;    // per super chunk: bounds of its slots when laid out
    std::vector<index_t> group_chunks;    // group g owns chunks [group_chunks[g], group_chunks[g + 1])
    std::vector<std::int32_t> slot_of;    // per box: its slot, -1 when inert or not a candidate
    static constexpr std::uint32_t no_box = ~std::uint32_t(0);

    template <class P>
    FOCAL_INLINE box4<P> load(index_t s) const noexcept {
        using tr = packet_traits<P>;
        return {{tr::load(&x1[s]), tr::load(&y1[s]), tr::load(&x2[s]), tr::load(&y2[s])}};
    }
    template <class P>
    FOCAL_INLINE box4<P> load_bounds(index_t c) const noexcept {
        using tr = packet_traits<P>;
        return {{tr::load(&bx1[c]), tr::load(&by1[c]), tr::load(&bx2[c]), tr::load(&by2[c])}};
    }
    template <class P>
    FOCAL_INLINE box4<P> load_super_bounds(index_t u) const noexcept {
        using tr = packet_traits<P>;
        return {{tr::load(&sx1[u]), tr::load(&sy1[u]), tr::load(&sx2[u]), tr::load(&sy2[u])}};
    }
    FOCAL_INLINE box4<T> slot_box(index_t s) const noexcept { return {{x1[s], y1[s], x2[s], y2[s]}}; }

    void clear_bounds(index_t c) noexcept { bx1[c] = by1[c] = bx2[c] = by2[c] = T(0); }
    // Bounds of the slots of chunk c for which live(slot) is true.
    template <class Live>
    void set_bounds(index_t c, const Live& live) noexcept {
        constexpr T inf = std::numeric_limits<T>::infinity();
        T a = inf, b = inf, p = -inf, q = -inf;
        for (index_t s = c * chunk; s < (c + 1) * chunk; ++s) {
            if (!live(s)) continue;
            a = std::min(a, x1[s]);
            b = std::min(b, y1[s]);
            p = std::max(p, x2[s]);
            q = std::max(q, y2[s]);
        }
        if (a == inf) return clear_bounds(c);
        bx1[c] = a;
        by1[c] = b;
        bx2[c] = p;
        by2[c] = q;
    }
};

// A finite, positive area: the only boxes whose IoU with another can exceed 0.
template <class T>
FOCAL_INLINE bool is_active(const box4<T>& b) noexcept {
    const T a = area(b);
    return a > T(0) && a < std::numeric_limits<T>::infinity();
}

FOCAL_INLINE std::uint32_t spread_bits16(std::uint32_t v) noexcept {
    v &= 0xffffu;
    v = (v | (v << 8)) & 0x00ff00ffu;
    v = (v | (v << 4)) & 0x0f0f0f0fu;
    v = (v | (v << 2)) & 0x33333333u;
    return (v | (v << 1)) & 0x55555555u;
}

// Lays out the candidates (box indices) in chunks; group_of(i) < groups is box i's group. The
// chunks of each group start at a multiple of pad (the packet width over chunk bounds).
template <class T, class BoxAt, class GroupOf>
box_chunks<T> make_box_chunks(index_t n, const std::vector<std::uint32_t>& candidates, const BoxAt& box_at,
                              const GroupOf& group_of, index_t groups, index_t pad) {
    constexpr index_t C = box_chunks<T>::chunk;
    box_chunks<T> ch;
    ch.slot_of.assign(static_cast<std::size_t>(n), -1);
    // The active boxes, read once.
    std::vector<box4<T>> active_box;
    std::vector<std::uint32_t> active;
    active_box.reserve(candidates.size());
    active.reserve(candidates.size());
    T lo_x = std::numeric_limits<T>::infinity(), lo_y = lo_x, hi_x = -lo_x, hi_y = -lo_x;
    for (const std::uint32_t i : candidates) {
        const box4<T> b = box_at(i);
        if (!is_active(b)) continue;
        active_box.push_back(b);
        active.push_back(i);
        lo_x = std::min(lo_x, b[0]);
        hi_x = std::max(hi_x, b[2]);
        lo_y = std::min(lo_y, b[1]);
        hi_y = std::max(hi_y, b[3]);
    }
    // Key: the group, then the Morton code of the centre on a grid of about 4 cells per box
    // (bits per axis: half of log2(boxes), plus one).
    const auto m = static_cast<std::uint32_t>(active.size());
    const int axis_bits = std::min(16, static_cast<int>(std::bit_width(m | 1u) + 1) / 2 + 1);
    const double cells = double((1u << axis_bits) - 1);
    const double sx = hi_x > lo_x ? cells / (double(hi_x) - double(lo_x)) : 0.0;
    const double sy = hi_y > lo_y ? cells / (double(hi_y) - double(lo_y)) : 0.0;
    const int group_shift = 2 * axis_bits;
    std::vector<std::uint32_t> position(active.size());
    std::vector<index_t> per_group(static_cast<std::size_t>(groups), 0);
    // Sorts by key; 32-bit keys when the groups fit beside the Morton code (two or three passes).
    auto sort_by = [&]<class Key>(Key) {
        std::vector<Key> keys(active.size());
        for (std::size_t k = 0; k < active.size(); ++k) {
            const box4<T>& b = active_box[k];
            const double cx = 0.5 * (double(b[0]) + double(b[2])) - double(lo_x);
            const double cy = 0.5 * (double(b[1]) + double(b[3])) - double(lo_y);
            // The cell of the centre; a non-finite centre (overflowing coordinates) goes to cell 0.
            auto cell = [&](double v) { return std::isfinite(v) ? static_cast<std::uint32_t>(std::clamp(v, 0.0, cells)) : 0u; };
            const std::uint32_t qx = cell(cx * sx), qy = cell(cy * sy);
            const std::uint32_t g = group_of(active[k]);
            ++per_group[g];
            keys[k] = Key(std::uint64_t(g) << group_shift) | spread_bits16(qx) | (spread_bits16(qy) << 1);
            position[k] = static_cast<std::uint32_t>(k);
        }
        radix_sort(keys, position);
    };
    if (std::uint64_t(groups) << group_shift <= (std::uint64_t(1) << 32)) sort_by(std::uint32_t{});
    else sort_by(std::uint64_t{});

    // Chunks per group, each group's first chunk at a multiple of pad.
    ch.group_chunks.assign(static_cast<std::size_t>(groups) + 1, 0);
    index_t chunks = 0;
    for (index_t g = 0; g < groups; ++g) {
        ch.group_chunks[g] = chunks;
        chunks += (per_group[g] + C - 1) / C;
        chunks = (chunks + pad - 1) / pad * pad;
    }
    ch.group_chunks[groups] = chunks;
    const auto slots = static_cast<std::size_t>(chunks * C);
    for (auto* v : {&ch.x1, &ch.y1, &ch.x2, &ch.y2, &ch.area}) v->assign(slots, T(0));
    ch.box.assign(slots, box_chunks<T>::no_box);
    for (auto* v : {&ch.bx1, &ch.by1, &ch.bx2, &ch.by2}) v->assign(static_cast<std::size_t>(chunks), T(0));
    std::size_t k = 0;
    for (index_t g = 0; g < groups; ++g) {
        index_t s = ch.group_chunks[g] * C;
        for (index_t j = 0; j < per_group[g]; ++j, ++k, ++s) {
            const std::uint32_t p = position[k], i = active[p];
            const box4<T>& b = active_box[p];
            ch.x1[s] = b[0];
            ch.y1[s] = b[1];
            ch.x2[s] = b[2];
            ch.y2[s] = b[3];
            ch.area[s] = area(b);
            ch.box[s] = i;
            ch.slot_of[i] = static_cast<std::int32_t>(s);
        }
    }
    const auto placed = [&ch](index_t s) { return ch.box[s] != box_chunks<T>::no_box; };
    for (index_t c = 0; c < chunks; ++c) ch.set_bounds(c, placed);
    // Super bounds: fixed from here on (a superset of the live slots' bounds stays a valid test).
    constexpr index_t S = box_chunks<T>::super;
    const index_t supers = ((chunks + S - 1) / S + pad - 1) / pad * pad;
    for (auto* v : {&ch.sx1, &ch.sy1, &ch.sx2, &ch.sy2}) v->assign(static_cast<std::size_t>(supers), T(0));
    for (index_t u = 0; u * S < chunks; ++u) {
        constexpr T inf = std::numeric_limits<T>::infinity();
        T a = inf, b = inf, p = -inf, q = -inf;
        for (index_t c = u * S; c < std::min(chunks, (u + 1) * S); ++c) {
            if (ch.bx1[c] == T(0) && ch.by1[c] == T(0) && ch.bx2[c] == T(0) && ch.by2[c] == T(0)) continue;
            a = std::min(a, ch.bx1[c]);
            b = std::min(b, ch.by1[c]);
            p = std::max(p, ch.bx2[c]);
            q = std::max(q, ch.by2[c]);
        }
        if (a == inf) continue;
        ch.sx1[u] = a;
        ch.sy1[u] = b;
        ch.sx2[u] = p;
        ch.sy2[u] = q;
    }
    return ch;
}

// False when no box inside bounds b can have IoU > t with p: such a box's intersection with p is at
// most b's (exactly so in floats too: every step is monotone), and IoU > t needs intersection >
// t * area(p) (the union is at least area(p)). limit = overlap_limit(t, area(p)) is that bound
// less 2^-10 of it, far more than the few ulps the IoU's own rounding can move; for t = 0 the test
// is "b overlaps p", which is exact.
template <class P, class T>
FOCAL_INLINE auto chunk_may_overlap(const box4<P>& p, const box4<P>& b, P limit) noexcept {
    const P zero(T(0));
    const P w = math::min(p[2], b[2]) - math::max(p[0], b[0]);
    const P h = math::min(p[3], b[3]) - math::max(p[1], b[1]);
    return math::select(w < zero, zero, w) * math::select(h < zero, zero, h) > limit;
}

template <class T>
FOCAL_INLINE T overlap_limit(T threshold, T area) noexcept {
    const T limit = threshold * area * T(1.0 - 1.0 / 1024.0);
    // Below the smallest normal T rounding is no longer relative (0.5 * 3 * 2^-149 rounds up to
    // 2 * 2^-149, cutting an IoU of 2 / 3): test plain overlap there, which is exact.
    return limit < std::numeric_limits<T>::min() ? T(0) : limit;
}

// Calls visit(c) for every chunk c in [c0, c1) (multiples of the packet width) whose bounds p may
// overlap enough: limit = overlap_limit(t, area(p)).
template <class P, class T, class Visit>
FOCAL_INLINE void for_overlapping_chunks(const box_chunks<T>& ch, index_t c0, index_t c1, const box4<P>& p, P limit,
                                         const Visit& visit) {
    using tr = packet_traits<P>;
    constexpr index_t W = tr::width, S = box_chunks<T>::super;
    static_assert(S % W == 0, "a super chunk holds whole packets of chunks");
    const P zero(T(0)), one(T(1));
    alignas(64) T hit_super[W], hit_chunk[W];
    for (index_t u0 = c0 / S / W * W; u0 * S < c1; u0 += W) {
        const auto may_super = chunk_may_overlap<P, T>(p, ch.template load_super_bounds<P>(u0), limit);
        if (!math::any(may_super)) continue;
        tr::store(hit_super, math::select(may_super, one, zero));
        for (index_t ku = 0; ku < W; ++ku) {
            if (hit_super[ku] == T(0)) continue;
            const index_t u = u0 + ku;
            for (index_t c = std::max(c0, u * S); c < std::min(c1, (u + 1) * S); c += W) {
                const auto may = chunk_may_overlap<P, T>(p, ch.template load_bounds<P>(c), limit);
                if (!math::any(may)) continue;
                tr::store(hit_chunk, math::select(may, one, zero));
                for (index_t k = 0; k < W; ++k)
                    if (hit_chunk[k] != T(0)) visit(c + k);
            }
        }
    }
}

}  // namespace focal::detail
