// focal/assign/match_output.hpp: where the matchers write (host and device memory alike).
#pragma once

#include <string>

#include "../core/checks.hpp"
#include "../core/memory_space.hpp"
#include "../core/view.hpp"

namespace focal {

// Where match_anchors writes: matches (N, required) and max_iou (N, optional: a null view).
// Space: host_space here; focal::cuda::match_anchors takes the same struct over device memory.
template <class TM, class TI = float, class Space = host_space>
struct match_output {
    vector_view<TM, Space> matches;
    vector_view<TI, Space> max_iou{};
};
// focal::match_output{matches} / {matches, max_iou} deduce the types (clang 14 has no aggregate CTAD).
template <class TM, class S>
match_output(view<TM, 1, S>) -> match_output<TM, float, S>;
template <class TM, class TI, class S>
match_output(view<TM, 1, S>, view<TI, 1, S>) -> match_output<TM, TI, S>;

// A batch's (focal::cuda::match_anchors_batched): the same with a leading image dimension, B x N.
template <class TM, class TI = float, class Space = host_space>
struct batch_match_output {
    matrix_view<TM, Space> matches;
    matrix_view<TI, Space> max_iou{};
};
template <class TM, class S>
batch_match_output(view<TM, 2, S>) -> batch_match_output<TM, float, S>;
template <class TM, class TI, class S>
batch_match_output(view<TM, 2, S>, view<TI, 2, S>) -> batch_match_output<TM, TI, S>;

namespace detail {
// The single-image output checks of the host and CUDA matchers: matches of extent N with distinct
// elements; max_iou null, or the same.
template <class TM, class TI, class S>
void check_match_output(const match_output<TM, TI, S>& out, index_t n, const char* where) {
    require_valid_extents(out.matches, where, "out.matches");
    require(out.matches.extent(0) == n, where, "out.matches", "of extent N = " + std::to_string(n) + " (one per anchor)",
            shape_string(out.matches));
    require_data(out.matches, where, "out.matches");
    require_distinct(out.matches, where, "out.matches");
    if (out.max_iou.is_null()) return;
    require_valid_extents(out.max_iou, where, "out.max_iou");
    require(out.max_iou.extent(0) == n, where, "out.max_iou",
            "null or of extent N = " + std::to_string(n) + " (one per anchor)", shape_string(out.max_iou));
    require_data(out.max_iou, where, "out.max_iou");
    require_distinct(out.max_iou, where, "out.max_iou");
}
}  // namespace detail

}  // namespace focal
