// focal/nms/detail/group_order.hpp: candidates regrouped by class, and classes made dense.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../../core/view.hpp"

namespace focal::detail {

// Class labels of any integer type, renumbered 0 .. groups - 1 in increasing label order.
struct dense_classes {
    std::vector<std::uint32_t> id;  // per box
    index_t groups = 0;
};

template <class TC>
dense_classes make_dense_classes(const vector_view<TC>& classes) {
    const index_t n = classes.extent(0);
    dense_classes d;
    d.id.resize(static_cast<std::size_t>(n));
    if (n == 0) return d;
    std::int64_t lo = 0, hi = 0;
    bool small = true;  // labels fit in int64 and span a small range: one table lookup each
    for (index_t i = 0; i < n; ++i) {
        const auto c = classes(i);
        if constexpr (std::is_unsigned_v<std::remove_cv_t<TC>>)
            small = small && c <= static_cast<std::uint64_t>(INT64_MAX / 2);
        const auto v = static_cast<std::int64_t>(c);
        lo = i == 0 ? v : std::min(lo, v);
        hi = i == 0 ? v : std::max(hi, v);
    }
    small = small && lo >= INT64_MIN / 2 && hi <= INT64_MAX / 2 && hi - lo <= 4 * n + 1024;
    if (small) {
        std::vector<std::uint32_t> table(static_cast<std::size_t>(hi - lo + 1), 0);
        for (index_t i = 0; i < n; ++i) table[static_cast<std::size_t>(static_cast<std::int64_t>(classes(i)) - lo)] = 1;
        std::uint32_t next = 0;
        for (auto& t : table) t = t ? next++ : 0;
        d.groups = next;
        for (index_t i = 0; i < n; ++i)
            d.id[i] = table[static_cast<std::size_t>(static_cast<std::int64_t>(classes(i)) - lo)];
        return d;
    }
    using C = std::remove_cv_t<TC>;
    std::vector<C> sorted(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) sorted[i] = classes(i);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    d.groups = static_cast<index_t>(sorted.size());
    for (index_t i = 0; i < n; ++i)
        d.id[i] = static_cast<std::uint32_t>(std::lower_bound(sorted.begin(), sorted.end(), classes(i)) -
                                             sorted.begin());
    return d;
}

// `order` split by group, each part keeping its order: boxes of group g are
// boxes[begin[g] .. begin[g + 1]).
struct grouped_order {
    std::vector<std::uint32_t> boxes;
    std::vector<index_t> begin;
};

template <class GroupOf>
grouped_order group_order(const std::vector<std::uint32_t>& order, const GroupOf& group_of, index_t groups) {
    grouped_order g;
    g.begin.assign(static_cast<std::size_t>(groups) + 1, 0);
    for (const std::uint32_t i : order) ++g.begin[group_of(i) + 1];
    for (index_t k = 0; k < groups; ++k) g.begin[k + 1] += g.begin[k];
    g.boxes.resize(order.size());
    std::vector<index_t> next(g.begin.begin(), g.begin.end() - 1);
    for (const std::uint32_t i : order) g.boxes[static_cast<std::size_t>(next[group_of(i)]++)] = i;
    return g;
}

}  // namespace focal::detail
