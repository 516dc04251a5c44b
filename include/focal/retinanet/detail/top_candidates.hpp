// focal/retinanet/detail/top_candidates.hpp: the k best (anchor, class) pairs of one pyramid level.
//
// top_candidates(logits /*A x K*/, logit_threshold, k, out) appends to out the pairs whose logit
// is > logit_threshold, at most k of them: the largest logits, ties broken by the smaller flat
// index a * K + c (torchvision flattens the same way). The scan is SIMD and keeps a small buffer:
// whenever it holds 4k entries the best k are kept and the threshold rises to the k-th logit, so
// memory stays O(k) and most packets are rejected by one compare. Ranking by logit equals ranking
// by sigmoid score (monotonic), except that distinct logits may round to one float score.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../config.hpp"
#include "../../core/math.hpp"
#include "../../core/packet.hpp"
#include "../../core/view.hpp"

namespace focal::detail {

struct candidate {
    float logit;
    std::int64_t flat;  // anchor * K + class
};

// Best first: larger logit, then smaller flat index.
inline bool better(const candidate& a, const candidate& b) noexcept {
    return a.logit > b.logit || (a.logit == b.logit && a.flat < b.flat);
}

template <class P, class T>
void top_candidates(const matrix_view<const T>& logits, T logit_threshold, index_t k, std::vector<candidate>& out) {
    using tr = packet_traits<P>;
    constexpr index_t width = tr::width;
    const std::size_t first = out.size();
    k = std::min<index_t>(k, logits.size());  // never more than there are pairs (and no 4k overflow)
    if (k <= 0) return;
    const std::size_t capacity = static_cast<std::size_t>(std::max<index_t>(4 * k, 1024));
    T threshold = logit_threshold;
    auto shrink = [&] {  // keep the best k of the buffer, raise the threshold to the k-th logit
        auto begin = out.begin() + static_cast<std::ptrdiff_t>(first);
        std::nth_element(begin, begin + (k - 1), out.end(), better);
        out.resize(first + static_cast<std::size_t>(k));
        // The k-th best logit: a later entry with the same logit has a larger flat index and loses
        // the tie, which the strict compare below implements.
        threshold = std::max(threshold, static_cast<T>(out.back().logit));
    };
    const index_t anchors = logits.extent(0), classes = logits.extent(1);
    auto push = [&](T x, index_t a, index_t c) {
        out.push_back({static_cast<float>(x), static_cast<std::int64_t>(a) * classes + c});
        if (out.size() - first >= capacity) shrink();
    };
    for (index_t a = 0; a < anchors; ++a) {
        const T* row = &logits(a, 0);
        index_t c = 0;
        if (logits.rows_contiguous()) {
            for (; c + width <= classes; c += width) {
                if (!math::any(tr::load(row + c) > P(threshold))) continue;
                for (index_t j = 0; j < width; ++j)
                    if (row[c + j] > threshold) push(row[c + j], a, c + j);
            }
        }
        for (; c < classes; ++c) {
            const T x = logits(a, c);
            if (x > threshold) push(x, a, c);
        }
    }
    if (out.size() - first > static_cast<std::size_t>(k)) shrink();
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(), better);
}

}  // namespace focal::detail
