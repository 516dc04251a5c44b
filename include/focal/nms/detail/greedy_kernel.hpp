// focal/nms/detail/greedy_kernel.hpp: greedy NMS over one group of chunked boxes.
//
// Boxes are visited best first. A box still alive is kept; it then marks dead every live box of
// its group with IoU > t: only chunks that it overlaps enough are visited (for_overlapping_chunks),
// and there the IoU is
// computed packet by packet with iou_from_areas (torchvision's arithmetic, so the decisions are
// torchvision's). A kept box is marked dead too, so that a chunk whose slots are all dead drops
// out of every later test; a chunk that lost slots shrinks its bounds to the live ones.
#pragma once

#include <cstdint>
#include <vector>

#include "../../box/iou.hpp"
#include "../../core/math.hpp"
#include "../../core/packet.hpp"
#include "box_chunks.hpp"

namespace focal::detail {

// Marks dead (1) every live slot of chunk c with IoU(p, slot) > t.
template <class P, class T>
FOCAL_INLINE void suppress_in_chunk(box_chunks<T>& ch, T* dead, index_t c, const box4<P>& p, P p_area, P t) {
    using tr = packet_traits<P>;
    constexpr index_t C = box_chunks<T>::chunk, W = tr::width;
    const P zero(T(0)), one(T(1));
    auto newly_dead = zero != zero, any_alive = zero != zero;
    for (index_t s = c * C; s < (c + 1) * C; s += W) {
        const P iou = iou_from_areas(p, ch.template load<P>(s), p_area, tr::load(&ch.area[s]));
        const P was = tr::load(dead + s);
        const auto hit = iou > t;
        newly_dead = newly_dead | (hit & (was == zero));
        const P now = math::select(hit, one, was);
        tr::store(dead + s, now);
        any_alive = any_alive | (now == zero);
    }
    if (!math::any(any_alive)) ch.clear_bounds(c);
    else if (math::any(newly_dead)) ch.set_bounds(c, [dead](index_t s) { return dead[s] == T(0); });
}

// Marks dead every live slot of chunks [c0, c1) with IoU > t against the box in slot s.
template <class P, class T>
FOCAL_INLINE void suppress_around(box_chunks<T>& ch, T* dead, index_t s, index_t c0, index_t c1, T t) {
    const box4<T> q = ch.slot_box(s);
    const box4<P> p{{P(q[0]), P(q[1]), P(q[2]), P(q[3])}};
    const P p_area(ch.area[s]), tp(t), limit(overlap_limit(t, ch.area[s]));
    for_overlapping_chunks(ch, c0, c1, p, limit, [&](index_t c) { suppress_in_chunk<P>(ch, dead, c, p, p_area, tp); });
}

// Greedy NMS of one group: boxes (indices, best first) -> kept[i] = 1, at most max_kept of them
// (< 0: no limit).
template <class P, class T>
void greedy_group(box_chunks<T>& ch, T* dead, index_t group, const std::uint32_t* boxes, index_t n, T t,
                  index_t max_kept, std::uint8_t* kept) {
    if (max_kept == 0) return;
    const index_t c0 = ch.group_chunks[group], c1 = ch.group_chunks[group + 1];
    index_t count = 0;
    for (index_t r = 0; r < n; ++r) {
        const std::uint32_t i = boxes[r];
        const std::int32_t s = ch.slot_of[i];
        if (s >= 0 && dead[s] != T(0)) continue;
        kept[i] = 1;
        if (++count == max_kept) return;
        if (s < 0) continue;  // inert: suppresses nothing
        dead[s] = T(1);
        suppress_around<P>(ch, dead, s, c0, c1, t);
    }
}

}  // namespace focal::detail
