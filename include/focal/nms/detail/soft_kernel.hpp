// focal/nms/detail/soft_kernel.hpp: Soft-NMS over chunked boxes.
//
// Each step picks the live box with the highest current score (equal scores: the lower index),
// outputs it, and multiplies the score of every live box by policy.weight(IoU); a score that
// falls below score_threshold drops the box. The pick is a tournament tree over the chunks'
// best boxes, so a step costs the chunks the picked box overlaps, not a pass over all boxes.
// Inert boxes (box_chunks.hpp: IoU 0 or NaN with everything) never decay and decay nothing: they
// wait in their own list, best first, and are merged into the picks.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "../../box/iou.hpp"
#include "../../core/math.hpp"
#include "../../core/packet.hpp"
#include "box_chunks.hpp"

namespace focal::detail {

template <class T>
struct soft_pick {
    T score = -std::numeric_limits<T>::infinity();
    std::uint32_t box = box_chunks<T>::no_box;
    std::int32_t slot = -1;
    // Higher score first, then lower index; a dead entry (-inf, no_box) loses to every live one.
    bool beats(const soft_pick& o) const noexcept { return score > o.score || (score == o.score && box < o.box); }
};

template <class T>
class soft_picker {
public:
    explicit soft_picker(index_t chunks) {
        while (leaves_ < chunks) leaves_ *= 2;
        tree_.assign(static_cast<std::size_t>(2 * leaves_), soft_pick<T>{});
    }
    void set(index_t chunk, const soft_pick<T>& best) {
        index_t k = leaves_ + chunk;
        tree_[k] = best;
        for (k /= 2; k >= 1; k /= 2) tree_[k] = tree_[2 * k + 1].beats(tree_[2 * k]) ? tree_[2 * k + 1] : tree_[2 * k];
    }
    const soft_pick<T>& best() const noexcept { return tree_[1]; }
    const soft_pick<T>& leaf(index_t chunk) const noexcept { return tree_[leaves_ + chunk]; }

private:
    index_t leaves_ = 1;
    std::vector<soft_pick<T>> tree_;
};

template <class T>
struct soft_boxes {
    box_chunks<T> ch;
    std::vector<T> score;  // per slot; -inf: dropped, picked or padding
};

// The chunk's best live slot.
template <class T>
soft_pick<T> chunk_best(const soft_boxes<T>& sb, index_t c) {
    constexpr index_t C = box_chunks<T>::chunk;
    soft_pick<T> best;
    for (index_t s = c * C; s < (c + 1) * C; ++s) {
        const T v = sb.score[s];
        if (v > best.score || (v == best.score && v != -std::numeric_limits<T>::infinity() && sb.ch.box[s] < best.box))
            best = {v, sb.ch.box[s], static_cast<std::int32_t>(s)};
    }
    return best;
}

template <class T>
void shrink_bounds(soft_boxes<T>& sb, index_t c) {
    sb.ch.set_bounds(c, [&sb](index_t s) { return sb.score[s] != -std::numeric_limits<T>::infinity(); });
}

// Multiplies the live scores of chunk c by policy.weight(IoU with p) and drops those below floor;
// returns whether any was dropped.
template <class P, class T, class Policy>
FOCAL_INLINE bool decay_chunk(soft_boxes<T>& sb, index_t c, const Policy& policy, const box4<P>& p, P p_area, P t,
                              P floor) {
    using tr = packet_traits<P>;
    constexpr index_t C = box_chunks<T>::chunk, W = tr::width;
    const P zero(T(0)), dropped(-std::numeric_limits<T>::infinity());
    auto any_dropped = zero != zero;
    for (index_t s = c * C; s < (c + 1) * C; s += W) {
        const P iou = iou_from_areas(p, sb.ch.template load<P>(s), p_area, tr::load(&sb.ch.area[s]));
        const P old = tr::load(&sb.score[s]);
        const P w = policy.weight(iou, t);
        const P decayed = math::select(w == zero, zero, old * w);  // never inf * 0
        const auto live = old >= floor, drop = decayed < floor;
        any_dropped = any_dropped | (live & drop);
        tr::store(&sb.score[s], math::select(live, math::select(drop, dropped, decayed), old));
    }
    return math::any(any_dropped);
}

// Runs Soft-NMS; emit(box, score) receives the picks in order, at most max_picks (-1: all).
// t: the IoU threshold of linear decay; floor: the score threshold; prune_t: the IoU a box must
// exceed to decay at all (t for linear decay, 0 for Gaussian), which decides the chunks visited.
template <class P, class T, class Policy, class Emit>
void soft_nms_run(soft_boxes<T>& sb, const std::vector<std::uint32_t>& inert, const std::vector<T>& inert_score,
                  const Policy& policy, T t, T prune_t, T floor, index_t max_picks, const Emit& emit) {
    const index_t chunks = sb.ch.group_chunks.back();
    soft_picker<T> picker(chunks);
    for (index_t c = 0; c < chunks; ++c) picker.set(c, chunk_best(sb, c));
    std::size_t next_inert = 0;
    for (index_t count = 0; count != max_picks; ++count) {
        soft_pick<T> pick = picker.best();
        if (next_inert < inert.size()) {
            const soft_pick<T> waiting{inert_score[next_inert], inert[next_inert], -1};
            if (pick.slot < 0 || waiting.beats(pick)) pick = waiting;
        }
        if (pick.box == box_chunks<T>::no_box) return;
        emit(pick.box, pick.score);
        if (pick.slot < 0) {
            ++next_inert;
            continue;
        }
        const index_t s = pick.slot;
        sb.score[s] = -std::numeric_limits<T>::infinity();
        const box4<T> q = sb.ch.slot_box(s);
        const box4<P> p{{P(q[0]), P(q[1]), P(q[2]), P(q[3])}};
        const P p_area(sb.ch.area[s]), tp(t), fp(floor), limit(overlap_limit(prune_t, sb.ch.area[s]));
        for_overlapping_chunks(sb.ch, 0, chunks, p, limit, [&](index_t c) {
            const bool any_dropped = decay_chunk<P>(sb, c, policy, p, p_area, tp, fp);
            if (any_dropped) shrink_bounds(sb, c);
            // The chunk's best stays best unless its own score moved: the others only fell.
            const soft_pick<T>& was = picker.leaf(c);
            if (any_dropped || (was.slot >= 0 && sb.score[was.slot] != was.score)) picker.set(c, chunk_best(sb, c));
        });
        const index_t own = s / box_chunks<T>::chunk;  // p was its chunk's best
        shrink_bounds(sb, own);
        picker.set(own, chunk_best(sb, own));
    }
}

}  // namespace focal::detail
