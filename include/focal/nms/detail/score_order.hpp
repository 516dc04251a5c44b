// focal/nms/detail/score_order.hpp: the candidates of an NMS, best first.
//
// score_order(scores) lists the indices whose score is not NaN by score descending, equal scores in
// index order: torch's sort(stable=True, descending=True) with the NaN scores left out.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/view.hpp"
#include "radix_sort.hpp"

namespace focal::detail {

template <class TS>
std::vector<std::uint32_t> score_order(vector_view<TS> scores) {
    using S = std::remove_const_t<TS>;
    using Key = decltype(descending_key(S{}));
    std::vector<Key> keys;
    std::vector<std::uint32_t> order;
    keys.reserve(static_cast<std::size_t>(scores.extent(0)));
    order.reserve(keys.capacity());
    for (index_t i = 0; i < scores.extent(0); ++i) {
        const S s = scores(i);
        if (s != s) continue;  // NaN: never kept, never suppresses
        keys.push_back(descending_key(s));
        order.push_back(static_cast<std::uint32_t>(i));
    }
    radix_sort(keys, order);
    return order;
}

}  // namespace focal::detail
