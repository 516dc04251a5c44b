// focal/nms/detail/greedy_run.hpp: greedy NMS of grouped boxes, from the score order to kept flags.
//
// Groups (classes) are independent: each runs greedy_group over its own chunks and its own part of
// the score order, so with exec::parallel the groups run on the pool; the flags, and so the
// output, do not depend on the execution policy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../../core/execution.hpp"
#include "../../core/host_packet.hpp"
#include "../../core/parallel.hpp"
#include "box_chunks.hpp"
#include "greedy_kernel.hpp"
#include "group_order.hpp"

namespace focal::detail {

// kept[i] = 1 for every box that greedy NMS keeps within its group; at most max_kept per group.
template <class T, class Exec, class BoxAt, class GroupOf>
std::vector<std::uint8_t> greedy_keep(const Exec& exec, index_t n, const std::vector<std::uint32_t>& order,
                                      const BoxAt& box_at, const GroupOf& group_of, index_t groups, T threshold,
                                      index_t max_kept) {
    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    constexpr index_t W = packet_traits<P>::width;
    static_assert(box_chunks<T>::chunk % W == 0, "a chunk holds whole packets");
    std::vector<std::uint8_t> kept(static_cast<std::size_t>(n), 0);
    if (order.empty() || groups == 0) return kept;
    box_chunks<T> ch = make_box_chunks<T>(n, order, box_at, group_of, groups, W);
    std::vector<T> dead(ch.box.size());
    for (std::size_t s = 0; s < dead.size(); ++s) dead[s] = ch.box[s] == box_chunks<T>::no_box ? T(1) : T(0);
    if (groups == 1) {
        greedy_group<P>(ch, dead.data(), 0, order.data(), static_cast<index_t>(order.size()), threshold, max_kept,
                        kept.data());
        return kept;
    }
    const grouped_order by_group = group_order(order, group_of, groups);
    const index_t work_per_group = std::max<index_t>(1, 16 * static_cast<index_t>(order.size()) / groups);
    for_each_block(exec, groups, 1, work_per_group, [&](index_t g0, index_t g1) {
        for (index_t g = g0; g < g1; ++g)
            greedy_group<P>(ch, dead.data(), g, by_group.boxes.data() + by_group.begin[g],
                            by_group.begin[g + 1] - by_group.begin[g], threshold, max_kept, kept.data());
    });
    return kept;
}

}  // namespace focal::detail
