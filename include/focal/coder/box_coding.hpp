// focal/coder/box_coding.hpp: encode and decode N boxes against N anchors with a coder policy.
//
//   encode_boxes(coder, boxes /*N x 4*/, anchors /*N x 4*/, out /*N x 4 deltas*/, exec)
//   decode_boxes(coder, deltas /*N x 4*/, anchors /*N x 4*/, out /*N x 4 boxes*/, exec)
// Row i of out depends on row i of the inputs only; out may be the first input's memory. SIMD
// runs on width boxes at a time, transposed to four coordinate packets and back.
#pragma once

#include <algorithm>
#include <concepts>
#include <type_traits>

#include "../box/box4.hpp"
#include "../config.hpp"
#include "../core/checks.hpp"
#include "../core/execution.hpp"
#include "../core/host_packet.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "delta_xywh.hpp"

namespace focal {

namespace detail {

// out_i = op(coder, in_i, anchor_i) for every row, width rows at a time.
template <class Op, class Exec, class TI, class TA, class TO>
void code_rows(const Op& op, matrix_view<TI> in, matrix_view<TA> anchors, matrix_view<TO> out, const Exec& exec,
               const char* where, const char* in_name) {
    using T = TO;
    require_valid_extents(in, where, in_name);
    require_extent(in, 1, 4, where, in_name);
    const index_t n = in.extent(0);
    require_extent(anchors, 0, n, where, "anchors (one per row)");
    require_extent(anchors, 1, 4, where, "anchors");
    require_extent(out, 0, n, where, "out (one row per input row)");
    require_extent(out, 1, 4, where, "out");
    require_data(in, where, in_name);
    require_data(anchors, where, "anchors");
    require_data(out, where, "out");
    require_non_overlapping(out, where, "out");

    constexpr bool simd = !std::is_same_v<Exec, exec::scalar_policy>;
    using P = host_packet_t<T, simd>;
    using tr = packet_traits<P>;
    constexpr index_t width = tr::width;
    // Packed rows (stride 4, 1) are read and written through plain pointers; anything else
    // through the views. Either way width rows are transposed to four coordinate packets.
    const bool packed = in.stride(0) == 4 && in.stride(1) == 1 && anchors.stride(0) == 4 && anchors.stride(1) == 1 &&
                        out.stride(0) == 4 && out.stride(1) == 1;
    for_each_block(exec, n, 8192, 4, [&](index_t begin, index_t end) {
        alignas(64) T a[4][width], x[4][width], y[4][width];
        auto run = [&] {
            const box4<P> r = op(box4<P>{{tr::load(x[0]), tr::load(x[1]), tr::load(x[2]), tr::load(x[3])}},
                                 box4<P>{{tr::load(a[0]), tr::load(a[1]), tr::load(a[2]), tr::load(a[3])}});
            for (int c = 0; c < 4; ++c) tr::store(y[c], r[c]);
        };
        index_t i0 = begin;
        if (packed) {
            const auto* ip = in.data_handle();
            const auto* ap = anchors.data_handle();
            T* op_ = out.data_handle();
            for (; i0 + width <= end; i0 += width) {
                for (index_t k = 0; k < width; ++k)
                    for (int c = 0; c < 4; ++c) {
                        x[c][k] = static_cast<T>(ip[(i0 + k) * 4 + c]);
                        a[c][k] = static_cast<T>(ap[(i0 + k) * 4 + c]);
                    }
                run();
                for (index_t k = 0; k < width; ++k)
                    for (int c = 0; c < 4; ++c) op_[(i0 + k) * 4 + c] = y[c][k];
            }
        }
        for (; i0 < end; i0 += width) {
            const index_t m = std::min(width, end - i0);
            for (index_t k = 0; k < width; ++k) {
                const index_t i = i0 + std::min(k, m - 1);  // pad with the last row: no special lanes
                for (int c = 0; c < 4; ++c) {
                    x[c][k] = static_cast<T>(in(i, c));
                    a[c][k] = static_cast<T>(anchors(i, c));
                }
            }
            run();
            for (index_t k = 0; k < m; ++k)
                for (int c = 0; c < 4; ++c) out(i0 + k, c) = y[c][k];
        }
    });
}

}  // namespace detail

template <class Coder, class TB, class TA, class TO, class Exec = exec::default_policy>
    requires std::floating_point<TO> && exec::is_policy_v<Exec>
void encode_boxes(const Coder& coder, matrix_view<TB> boxes, matrix_view<TA> anchors, matrix_view<TO> out,
                  const Exec& exec = {}) {
    constexpr const char* where = "focal::encode_boxes";
    validate(coder, where);
    detail::code_rows([&](const auto& b, const auto& a) { return coder.encode(b, a); }, boxes, anchors, out, exec, where,
                      "boxes");
}

template <class Coder, class TD, class TA, class TO, class Exec = exec::default_policy>
    requires std::floating_point<TO> && exec::is_policy_v<Exec>
void decode_boxes(const Coder& coder, matrix_view<TD> deltas, matrix_view<TA> anchors, matrix_view<TO> out,
                  const Exec& exec = {}) {
    constexpr const char* where = "focal::decode_boxes";
    validate(coder, where);
    detail::code_rows([&](const auto& d, const auto& a) { return coder.decode(d, a); }, deltas, anchors, out, exec, where,
                      "deltas");
}

}  // namespace focal
