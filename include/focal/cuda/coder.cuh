// focal/cuda/coder.cuh: encode and decode N boxes against N anchors on the device.
//
//   encode_boxes(coder, boxes /*N x 4*/, anchors /*N x 4*/, out /*N x 4 deltas*/, stream)
//   decode_boxes(coder, deltas /*N x 4*/, anchors /*N x 4*/, out /*N x 4 boxes*/, stream)
// The device form of coder/box_coding.hpp for any coder policy with FOCAL_HD encode / decode and a
// validate(coder, where) overload (delta_xywh_coder): one thread per row, in out's type, through
// the policy's own code. Row i of out depends on row i of the inputs only; out may be the first
// input's memory (same rows, same strides).
// Numerics: the same formula as the host, but nvcc contracts a * b + c into an FMA and CUDA's
// expf / logf differ from the host's by an ulp or two, so rows agree with the host
// encode_boxes / decode_boxes within a few float ulps (tests: 2e-6 relative to the row's scale),
// not bit for bit. Non-finite inputs give what the policy gives (NaN stays NaN).
#pragma once

#include <cuda_runtime.h>

#include <concepts>
#include <type_traits>

#include "../box/box4.hpp"
#include "../coder/delta_xywh.hpp"
#include "../core/checks.hpp"
#include "launch.cuh"
#include "view.cuh"

namespace focal::cuda {

namespace detail::coder {

enum class direction { encode, decode };

template <direction D, class Coder, class TI, class TA, class TO>
__global__ void code_rows_kernel(Coder coder, device_matrix_view<TI> in, device_matrix_view<TA> anchors,
                                 device_matrix_view<TO> out) {
    using T = TO;
    for (index_t i = thread_index(); i < in.extent(0); i += grid_stride()) {
        const box4<T> x{{static_cast<T>(in(i, 0)), static_cast<T>(in(i, 1)), static_cast<T>(in(i, 2)),
                         static_cast<T>(in(i, 3))}};
        const box4<T> a{{static_cast<T>(anchors(i, 0)), static_cast<T>(anchors(i, 1)), static_cast<T>(anchors(i, 2)),
                         static_cast<T>(anchors(i, 3))}};
        box4<T> r;
        if constexpr (D == direction::encode) r = coder.encode(x, a);
        else r = coder.decode(x, a);
        for (int c = 0; c < 4; ++c) out(i, c) = r[c];
    }
}

template <direction D, class Coder, class TI, class TA, class TO>
void code_rows(const Coder& coder, device_matrix_view<TI> in, device_matrix_view<TA> anchors,
               device_matrix_view<TO> out, cudaStream_t stream, const char* where, const char* in_name) {
    validate(coder, where);
    focal::detail::require_valid_extents(in, where, in_name);
    focal::detail::require_extent(in, 1, 4, where, in_name);
    const index_t n = in.extent(0);
    focal::detail::require_valid_extents(anchors, where, "anchors");
    focal::detail::require_extent(anchors, 0, n, where, "anchors (one per row)");
    focal::detail::require_extent(anchors, 1, 4, where, "anchors");
    focal::detail::require_valid_extents(out, where, "out");
    focal::detail::require_extent(out, 0, n, where, "out (one row per input row)");
    focal::detail::require_extent(out, 1, 4, where, "out");
    focal::detail::require_data(in, where, in_name);
    focal::detail::require_data(anchors, where, "anchors");
    focal::detail::require_data(out, where, "out");
    focal::detail::require_non_overlapping(out, where, "out");
    if (n == 0) return;
    launch(where, code_rows_kernel<D, Coder, TI, TA, TO>, grid_size(n), default_block_size, 0, stream, coder, in,
           anchors, out);
}

}  // namespace detail::coder

template <class Coder, class TB, class TA, class TO>
    requires std::floating_point<TO>
void encode_boxes(const Coder& coder, device_matrix_view<TB> boxes, device_matrix_view<TA> anchors,
                  device_matrix_view<TO> out, cudaStream_t stream) {
    detail::coder::code_rows<detail::coder::direction::encode>(coder, boxes, anchors, out, stream,
                                                               "focal::cuda::encode_boxes", "boxes");
}

template <class Coder, class TD, class TA, class TO>
    requires std::floating_point<TO>
void decode_boxes(const Coder& coder, device_matrix_view<TD> deltas, device_matrix_view<TA> anchors,
                  device_matrix_view<TO> out, cudaStream_t stream) {
    detail::coder::code_rows<detail::coder::direction::decode>(coder, deltas, anchors, out, stream,
                                                               "focal::cuda::decode_boxes", "deltas");
}

}  // namespace focal::cuda
