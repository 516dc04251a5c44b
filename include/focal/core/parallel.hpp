// focal/core/parallel.hpp: run a range of work items in blocks under an execution policy.
//
// for_each_block(exec, items, block_items, fn) calls fn(begin, end) for consecutive blocks of
// block_items items (the last one shorter). The blocks depend on the sizes only, never on the
// thread count; with exec::parallel they run on the pool when the input is large enough.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "execution.hpp"
#include "view.hpp"

namespace focal::detail {

template <class Exec, class Fn>
void for_each_block(const Exec& exec, index_t items, index_t block_items, index_t elements_per_item, const Fn& fn) {
    if (items <= 0) return;
    block_items = std::max<index_t>(1, block_items);
    const index_t n_blocks = (items + block_items - 1) / block_items;
    auto run_block = [&](std::size_t b) {
        const index_t begin = static_cast<index_t>(b) * block_items;
        fn(begin, std::min(items, begin + block_items));
    };
    if constexpr (std::is_same_v<Exec, exec::parallel_policy>) {
        if (static_cast<std::size_t>(items * elements_per_item) >= exec.min_elements && exec.thread_count() > 1 &&
            n_blocks > 1) {
            exec.get_pool().parallel_for(static_cast<std::size_t>(n_blocks), exec.thread_count(), run_block);
            return;
        }
    }
    for (index_t b = 0; b < n_blocks; ++b) run_block(static_cast<std::size_t>(b));
}

}  // namespace focal::detail
