// focal/assign/match_output.hpp: where the matchers write (host and device memory alike).
#pragma once

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

}  // namespace focal
