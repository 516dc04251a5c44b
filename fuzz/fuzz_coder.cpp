// fuzz/fuzz_coder.cpp: the delta-xywh box coder (coder/delta_xywh.hpp, coder/box_coding.hpp).
//
// Checked beyond "no crash":
//   * encode_boxes / decode_boxes fail with focal::error exactly for invalid coder parameters
//     (weights, clamp, min_size not finite and > 0);
//   * each row equals coder.encode / coder.decode on that row alone, exactly under exec::scalar,
//     within float rounding of exp and log under exec::simd and exec::parallel, for every input
//     and output layout, and in place (out = the first input's memory);
//   * decode is finite for finite inputs within bounds (coordinates and dx, dy up to 1e6, any
//     finite dw, dh: the clamp bounds exp), and gives x1 <= x2, y1 <= y2 for a non-inverted anchor;
//   * encode is finite for finite bounded inputs (min_size floors widths and heights);
//   * decode(encode(box)) gives the box back, to rounding, for boxes and anchors of positive size
//     whose size ratio the clamp does not cut; encode(anchor, anchor) is 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <focal/coder/box_coding.hpp>

#include "byte_reader.hpp"
#include "reference.hpp"

namespace {

using namespace focal_fuzz;
using focal::index_t;

// The size of the values a coordinate is computed from, as a bound on its rounding error: SIMD
// and scalar code round differently (fused multiply-add, exp and log to the ulp), and a result
// near 0 from the difference of large terms keeps the terms' absolute error.
template <class T>
double coder_scale(bool decode, int c, const focal::box4<T>& x, const focal::box4<T>& a, const focal::box4<T>& want,
                   const focal::delta_xywh_coder& coder) {
    const int lo = c % 2, hi = lo + 2;  // x or y
    const double weight = lo == 0 ? coder.wx : coder.wy, size_weight = lo == 0 ? coder.ww : coder.wh;
    const double a_lo = std::fabs(double(a[lo])), a_hi = std::fabs(double(a[hi]));
    if (decode) {
        const double size = std::fabs(double(a[hi]) - double(a[lo]));
        return std::fabs(double(x[lo]) / weight) * size + a_lo + a_hi + std::fabs(double(want[lo])) + std::fabs(double(want[hi]));
    }
    const double size = std::max(double(a[hi]) - double(a[lo]), double(coder.min_size));
    if (c < 2) return weight * (std::fabs(double(x[lo])) + std::fabs(double(x[hi])) + a_lo + a_hi) / size;
    return size_weight * (1.0 + std::fabs(double(want[c]) / size_weight));
}

template <class T>
bool finite_within(const focal::box4<T>& b, double limit) {
    for (int c = 0; c < 4; ++c)
        if (!(std::fabs(double(b[c])) <= limit)) return false;
    return true;
}

focal::delta_xywh_coder read_coder(byte_reader& in) {
    focal::delta_xywh_coder c;
    const std::uint8_t mode = in.u8();
    if (mode < 80) return c;
    if (mode < 120) {
        c.wx = c.wy = 10.0f, c.ww = c.wh = 5.0f;
        return c;
    }
    auto positive = [&in] { return in.chance(220) ? static_cast<float>(1 + in.u8() % 40) / 4.0f : in.number<float>(); };
    c.wx = positive(), c.wy = positive(), c.ww = positive(), c.wh = positive();
    c.clamp = in.chance(200) ? static_cast<float>(1 + in.u8() % 40) / 4.0f : in.number<float>();
    const std::uint8_t clamping = in.u8() % 3;
    c.clamping = clamping == 0   ? focal::delta_xywh_coder::clamp_mode::upper
                 : clamping == 1 ? focal::delta_xywh_coder::clamp_mode::symmetric
                                 : focal::delta_xywh_coder::clamp_mode::none;
    c.min_size = in.chance(200) ? std::ldexp(1.0f, -static_cast<int>(in.u8() % 40)) : in.number<float>();
    return c;
}

bool valid_coder(const focal::delta_xywh_coder& c) {
    for (float w : {c.wx, c.wy, c.ww, c.wh})
        if (!(std::isfinite(w) && w > 0.0f)) return false;
    return std::isfinite(c.clamp) && c.clamp > 0.0f && std::isfinite(c.min_size) && c.min_size > 0.0f;
}

// Deltas: mostly the grid values of byte_reader, sometimes the edge cases.
template <class T>
void read_delta(byte_reader& in, T* out) {
    for (int c = 0; c < 4; ++c) out[c] = in.chance(200) ? static_cast<T>(static_cast<std::int8_t>(in.u8())) / T(32) : in.number<T>();
}

template <class T, class TIn>
void run(byte_reader& in) {
    const focal::delta_xywh_coder coder = read_coder(in);
    const int in_layout = in.u8() % 3, out_layout = in.u8() % 3;
    const auto n = static_cast<index_t>(in.count(24, 200, 6));
    std::vector<TIn> boxes(static_cast<std::size_t>(4 * n)), anchors(boxes.size()), deltas(boxes.size());
    for (index_t i = 0; i < n; ++i) {
        read_box(in, &boxes[4 * i]);
        if (in.chance(40)) std::copy_n(&boxes[4 * i], 4, &anchors[4 * i]);  // a box on its own anchor
        else read_box(in, &anchors[4 * i]);
        read_delta(in, &deltas[4 * i]);
    }
    const strided_matrix<TIn> bv(boxes, n, 4, in_layout), av(anchors, n, 4, in_layout == 2 ? 0 : in_layout);
    const strided_matrix<TIn> dv(deltas, n, 4, in_layout);
    const std::vector<T> fill(static_cast<std::size_t>(4 * n), T(-11));
    const bool valid = valid_coder(coder);

    for (int decode = 0; decode < 2; ++decode) {
        const strided_matrix<TIn>& input = decode ? dv : bv;
        const strided_matrix<T> out_scalar(fill, n, 4, out_layout), out_simd(fill, n, 4, out_layout), out_par(fill, n, 4, out_layout);
        auto code = [&](const auto& exec, const strided_matrix<T>& out) {
            return succeeds([&] {
                if (decode) focal::decode_boxes(coder, input.const_view(), av.const_view(), out.view(), exec);
                else focal::encode_boxes(coder, input.const_view(), av.const_view(), out.view(), exec);
            });
        };
        const bool ok = code(focal::exec::scalar, out_scalar);
        FUZZ_CHECK(ok == valid);
        if (!ok) return;
        FUZZ_CHECK(code(focal::exec::simd, out_simd) && code(parallel(), out_par));

        // In place: the first input's own memory as the output (same type needed).
        std::vector<T> own(static_cast<std::size_t>(4 * n));
        for (index_t i = 0; i < n; ++i)
            for (int c = 0; c < 4; ++c) own[static_cast<std::size_t>(4 * i + c)] = static_cast<T>(input.at(i, c));
        const strided_matrix<T> own_view(own, n, 4, 0);
        FUZZ_CHECK(succeeds([&] {
            if (decode) focal::decode_boxes(coder, own_view.const_view(), av.const_view(), own_view.view(), focal::exec::scalar);
            else focal::encode_boxes(coder, own_view.const_view(), av.const_view(), own_view.view(), focal::exec::scalar);
        }));

        for (index_t i = 0; i < n; ++i) {
            const focal::box4<T> x{{T(input.at(i, 0)), T(input.at(i, 1)), T(input.at(i, 2)), T(input.at(i, 3))}};
            const focal::box4<T> a{{T(av.at(i, 0)), T(av.at(i, 1)), T(av.at(i, 2)), T(av.at(i, 3))}};
            const focal::box4<T> want = decode ? coder.decode(x, a) : coder.encode(x, a);
            // xsimd's exp flushes results below the smallest normal T to 0 and its log is wrong
            // for denormal arguments (README, Numerics): SIMD rows are compared where neither
            // happens, i.e. where the log-space size lies above log(min normal).
            const double log_min = std::log(double(std::numeric_limits<T>::min())) + 1.0;
            const double lw = decode ? double(x[2]) / coder.ww : double(want[2]) / coder.ww;
            const double lh = decode ? double(x[3]) / coder.wh : double(want[3]) / coder.wh;
            // Overflow is rounding too: fused and separate multiply-adds overflow at different
            // points, so rows with huge values or an infinite result are not compared either.
            const double huge = double(std::numeric_limits<T>::max()) / 64;
            bool comparable = !(lw < log_min) && !(lh < log_min);
            // Nor are rows near the denormal range, where one rounding is a large relative error.
            const double tiny = std::ldexp(double(std::numeric_limits<T>::min()), 30);
            auto near_denormal = [tiny](T v) { return v != T(0) && std::fabs(double(v)) < tiny; };
            comparable = comparable && (decode || coder.min_size >= tiny);
            for (int c = 0; c < 4; ++c)
                comparable = comparable && !(std::fabs(double(x[c])) > huge) && !(std::fabs(double(a[c])) > huge) &&
                             !near_denormal(x[c]) && !near_denormal(a[c]) && !std::isinf(want[c]) &&
                             !(coder_scale(decode != 0, c, x, a, want, coder) > huge);
            for (int c = 0; c < 4; ++c) {
                const T s = out_scalar.at(i, c);
                FUZZ_CHECKF(same(s, want[c]), "%s row %td, %d: %g, the coder gives %g\n", decode ? "decode" : "encode", i, c,
                            double(s), double(want[c]));
                FUZZ_CHECK(same(own_view.at(i, c), s));
                // (plus the smallest normal T: SIMD code may flush denormal results to 0)
                const double tol = 16 * double(std::numeric_limits<T>::epsilon()) * coder_scale(decode != 0, c, x, a, want, coder) +
                                   double(std::numeric_limits<T>::min());
                if (comparable && !same(out_simd.at(i, c), s) && !(std::fabs(double(out_simd.at(i, c)) - double(s)) <= tol)) {
                    print_list("input row", std::vector<double>{double(x[0]), double(x[1]), double(x[2]), double(x[3])});
                    print_list("anchor", std::vector<double>{double(a[0]), double(a[1]), double(a[2]), double(a[3])});
                    std::fprintf(stderr, "weights %g %g %g %g, clamp %g (mode %d), min_size %g, tolerance %g\n", double(coder.wx),
                                 double(coder.wy), double(coder.ww), double(coder.wh), double(coder.clamp),
                                 static_cast<int>(coder.clamping), double(coder.min_size), tol);
                }
                FUZZ_CHECKF(!comparable || same(out_simd.at(i, c), s) || std::fabs(double(out_simd.at(i, c)) - double(s)) <= tol,
                            "%s row %td, %d: simd %.9g, scalar %.9g\n", decode ? "decode" : "encode", i, c,
                            double(out_simd.at(i, c)), double(s));
                FUZZ_CHECK(same(out_par.at(i, c), out_simd.at(i, c)));
            }
            const bool weights_bounded = coder.wx >= 1e-3f && coder.wy >= 1e-3f && coder.ww >= 1e-3f && coder.wh >= 1e-3f &&
                                         coder.wx <= 1e3f && coder.wy <= 1e3f && coder.ww <= 1e3f && coder.wh <= 1e3f;
            if (decode) {
                // exp(min(dw, clamp)) * aw stays finite when the clamp is moderate.
                const bool clamped = coder.clamping != focal::delta_xywh_coder::clamp_mode::none && coder.clamp <= 20.0f;
                const bool bounded = finite_within(a, 1e6) && std::fabs(double(x[0])) <= 1e6 &&
                                     std::fabs(double(x[1])) <= 1e6 && std::isfinite(x[2]) && std::isfinite(x[3]) &&
                                     (clamped || (std::fabs(double(x[2]) / coder.ww) <= 20 && std::fabs(double(x[3]) / coder.wh) <= 20));
                if (bounded && weights_bounded) {
                    for (int c = 0; c < 4; ++c) FUZZ_CHECKF(std::isfinite(want[c]), "decode row %td: %g\n", i, double(want[c]));
                    if (a[2] >= a[0]) FUZZ_CHECK(want[0] <= want[2]);
                    if (a[3] >= a[1]) FUZZ_CHECK(want[1] <= want[3]);
                }
            } else {
                // (min_size >= 1e-12: a denormal floor over a large anchor is a size ratio of 0)
                if (finite_within(x, 1e6) && finite_within(a, 1e6) && weights_bounded && coder.min_size >= 1e-12f)
                    for (int c = 0; c < 4; ++c) FUZZ_CHECKF(std::isfinite(want[c]), "encode row %td: %g\n", i, double(want[c]));
                if (x[0] == a[0] && x[1] == a[1] && x[2] == a[2] && x[3] == a[3] && finite_within(a, 1e30))
                    for (int c = 0; c < 4; ++c) FUZZ_CHECKF(want[c] == T(0), "encode(anchor, anchor) row %td: %g\n", i, double(want[c]));
                // The round trip, where nothing is floored or clamped and nothing overflows.
                const T bw = x[2] - x[0], bh = x[3] - x[1], aw = a[2] - a[0], ah = a[3] - a[1];
                const double limit = std::exp(double(coder.clamp)) * 0.99;
                const bool clamp_off = coder.clamping == focal::delta_xywh_coder::clamp_mode::none;
                const bool plain = finite_within(x, 1e4) && finite_within(a, 1e4) && bw >= T(1e-2) && bh >= T(1e-2) &&
                                   aw >= T(1e-2) && ah >= T(1e-2) && bw >= T(coder.min_size) && bh >= T(coder.min_size) &&
                                   aw >= T(coder.min_size) && ah >= T(coder.min_size) && weights_bounded &&
                                   (clamp_off || (double(bw) / double(aw) < limit && double(bh) / double(ah) < limit &&
                                                  (coder.clamping == focal::delta_xywh_coder::clamp_mode::upper ||
                                                   (double(aw) / double(bw) < limit && double(ah) / double(bh) < limit))));
                if (plain) {
                    const focal::box4<T> back = coder.decode(want, a);
                    // Rounding of centres and sizes, relative to the largest coordinate or size involved.
                    double scale = 1.0;
                    for (int c = 0; c < 4; ++c) scale = std::max({scale, std::fabs(double(x[c])), std::fabs(double(a[c]))});
                    const double tol = (sizeof(T) == 4 ? 1e-4 : 1e-11) * scale;
                    for (int c = 0; c < 4; ++c)
                        FUZZ_CHECKF(std::fabs(double(back[c]) - double(x[c])) <= tol,
                                    "round trip row %td, %d: %.9g back from %.9g (anchor %g %g %g %g)\n", i, c,
                                    double(back[c]), double(x[c]), double(a[0]), double(a[1]), double(a[2]), double(a[3]));
                }
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    switch (in.u8() % 3) {
        case 0: run<float, float>(in); break;
        case 1: run<double, double>(in); break;
        default: run<float, double>(in); break;
    }
    return 0;
}
