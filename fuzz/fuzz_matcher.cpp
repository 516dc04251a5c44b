// fuzz/fuzz_matcher.cpp: the pairwise IoU matrix (box/pairwise.hpp), the max-IoU matcher
// (assign/match.hpp) and the target builder (assign/targets.hpp) from bytes.
//
// Checked beyond "no crash":
//   * pairwise IoU / GIoU equal focal::iou / focal::giou pair by pair (every policy, every output
//     layout); IoU is NaN or in [0, 1], and NaN only with a non-finite coordinate or area;
//   * match_anchors fails with focal::error exactly for an invalid matcher or a non-finite gt or
//     crowd box; otherwise its codes and max IoUs equal a brute-force matcher written from
//     max_iou_matcher.hpp's rules (thresholds compared in the IoU's type, crowd regions, non-finite
//     anchors, low-quality promotion with zero_iou_guard and low_quality_iou_threshold), under
//     exec::scalar, simd and parallel; codes lie in [-2, M); out.max_iou is NaN exactly for
//     non-finite anchors;
//   * build_targets: labels are the gt labels of positives and the codes elsewhere, targets are
//     0 for non-positives and coder.encode for positives (exactly under exec::scalar, to float
//     rounding of log under exec::simd), finite for finite bounded boxes; the return value counts
//     the positives; writing labels over the matches' own memory gives the same labels;
//     assign_targets equals match_anchors + build_targets.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <focal/assign/targets.hpp>
#include <focal/box/pairwise.hpp>
#include <focal/coder/delta_xywh.hpp>

#include "byte_reader.hpp"
#include "reference.hpp"

namespace {

using namespace focal_fuzz;
using focal::index_t;

template <class T>
bool finite_box(const focal::box4<T>& b) {
    return std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]);
}
template <class T>
bool bounded_box(const focal::box4<T>& b, double limit) {
    for (int c = 0; c < 4; ++c)
        if (!(std::fabs(static_cast<double>(b[c])) <= limit)) return false;
    return true;
}
template <class T, class U>
focal::box4<T> as(const focal::box4<U>& b) {
    return {{static_cast<T>(b[0]), static_cast<T>(b[1]), static_cast<T>(b[2]), static_cast<T>(b[3])}};
}

// Anchors on a grid (a few bytes give hundreds, so the matcher's blocks of 256 all run).
template <class T>
void grid_anchors(byte_reader& in, std::vector<T>& out) {
    const int rows = 1 + in.u8() % 24, cols = 1 + in.u8() % 24, stride = 1 + in.u8() % 16, shapes = 1 + in.u8() % 3;
    T w[3], h[3];
    for (int s = 0; s < shapes; ++s) w[s] = static_cast<T>(1 + in.u8() % 32), h[s] = static_cast<T>(1 + in.u8() % 32);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            for (int s = 0; s < shapes; ++s) {
                const T cx = (static_cast<T>(c) + T(0.5)) * static_cast<T>(stride);
                const T cy = (static_cast<T>(r) + T(0.5)) * static_cast<T>(stride);
                out.insert(out.end(), {cx - w[s] / 2, cy - h[s] / 2, cx + w[s] / 2, cy + h[s] / 2});
            }
}

template <class T>
std::vector<T> read_boxes(byte_reader& in, std::size_t n) {
    std::vector<T> out(4 * n);
    for (std::size_t i = 0; i < n; ++i) read_box(in, &out[4 * i]);
    return out;
}

// The matcher by its rules (max_iou_matcher.hpp), one anchor and one gt at a time, in T: the
// double thresholds are compared as T(threshold), as torchvision compares a float IoU tensor with a
// Python number.
template <class T, bool PlusOne, class TA, class TG>
void match_reference(const focal::max_iou_matcher& m, const std::vector<TA>& anchors, const std::vector<TG>& gt,
                     const std::vector<TG>* crowd, std::vector<std::int64_t>& codes, std::vector<T>& best_iou) {
    const focal::detail::overlap<PlusOne> ov{};
    const std::size_t n = anchors.size() / 4, mm = gt.size() / 4, nc = crowd ? crowd->size() / 4 : 0;
    std::vector<T> iou(n * mm);
    std::vector<std::int64_t> argmax(n);
    std::vector<char> finite(n);
    codes.assign(n, 0);
    best_iou.assign(n, T(0));
    for (std::size_t i = 0; i < n; ++i) {
        const auto a = as<T>(box_at(anchors, static_cast<std::int64_t>(i)));
        const T area_a = ov.area(a);
        finite[i] = finite_box(a);
        T best = T(0);
        std::int64_t idx = 0;
        for (std::size_t j = 0; j < mm; ++j) {
            const auto g = as<T>(box_at(gt, static_cast<std::int64_t>(j)));
            const T v = ov.iou(a, g, area_a, ov.area(g));
            iou[i * mm + j] = v;
            if (v > best) best = v, idx = static_cast<std::int64_t>(j);
        }
        std::int64_t code = mm == 0                                 ? focal::background_label
                            : best >= T(m.positive_iou_threshold) ? idx
                            : best >= T(m.negative_iou_threshold) ? focal::ignored_label
                                                                  : focal::background_label;
        for (std::size_t c = 0; c < nc && code == focal::background_label; ++c) {
            const auto r = as<T>(box_at(*crowd, static_cast<std::int64_t>(c)));
            const T inter = ov.intersection(a, r);
            const T iof = area_a > T(0) ? inter / area_a : T(0);
            if (iof > T(m.crowd_iof_threshold)) code = focal::ignored_label;
        }
        codes[i] = finite[i] ? code : focal::ignored_label;
        best_iou[i] = finite[i] ? best : std::numeric_limits<T>::quiet_NaN();
        argmax[i] = idx;
    }
    if (!m.allow_low_quality_matches || mm == 0 || n == 0) return;
    std::vector<T> gt_max(mm, T(0));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < mm; ++j)
            if (iou[i * mm + j] > gt_max[j]) gt_max[j] = iou[i * mm + j];
    for (std::size_t i = 0; i < n; ++i) {
        if (!finite[i] || !(best_iou[i] >= T(m.low_quality_iou_threshold))) continue;
        for (std::size_t j = 0; j < mm; ++j)
            if ((!m.zero_iou_guard || gt_max[j] > T(0)) && iou[i * mm + j] == gt_max[j]) {
                codes[i] = argmax[i];
                break;
            }
    }
}

focal::max_iou_matcher read_matcher(byte_reader& in) {
    const std::uint8_t preset = in.u8();
    if (preset < 60) return {};
    if (preset < 120) return focal::matcher_presets::torchvision();
    if (preset < 160) return focal::matcher_presets::detectron();
    focal::max_iou_matcher m;
    // Mostly a multiple of 1/20 as a double (0.7, not float(0.7): the IoU's type decides), else any
    // float (NaN, infinities, extremes), as the seeds were written.
    auto unit = [&in] { return in.chance(230) ? static_cast<double>(in.u8() % 21) / 20.0 : static_cast<double>(in.number<float>()); };
    m.positive_iou_threshold = unit();
    m.negative_iou_threshold = unit();
    if (preset < 230 && m.negative_iou_threshold > m.positive_iou_threshold) std::swap(m.negative_iou_threshold, m.positive_iou_threshold);
    m.allow_low_quality_matches = in.flag();
    m.zero_iou_guard = in.flag();
    m.low_quality_iou_threshold = in.chance(128) ? 0.0 : unit();
    m.crowd_iof_threshold = unit();
    m.plus_one = in.flag();
    return m;
}

bool valid_matcher(const focal::max_iou_matcher& m) {
    auto unit = [](double v) { return v >= 0.0 && v <= 1.0; };
    return unit(m.negative_iou_threshold) && unit(m.positive_iou_threshold) && m.negative_iou_threshold <= m.positive_iou_threshold &&
           unit(m.low_quality_iou_threshold) && unit(m.crowd_iof_threshold);
}

template <class TO, class TA, class TG>
void check_pairwise(const strided_matrix<TA>& a, const strided_matrix<TG>& g, int layout) {
    const index_t n = a.view().extent(0), m = g.view().extent(0);
    const std::vector<TO> zeros(static_cast<std::size_t>(n * m), TO(-5));
    for (int giou = 0; giou < 2; ++giou) {
        const strided_matrix<TO> out_scalar(zeros, n, m, layout), out_simd(zeros, n, m, layout), out_par(zeros, n, m, layout);
        auto run = [&](const auto& exec, const strided_matrix<TO>& out) {
            if (giou) focal::pairwise_similarity(focal::giou_similarity{}, a.const_view(), g.const_view(), out.view(), exec);
            else focal::pairwise_iou(a.const_view(), g.const_view(), out.view(), exec);
        };
        run(focal::exec::scalar, out_scalar);
        run(focal::exec::simd, out_simd);
        run(parallel(), out_par);
        for (index_t i = 0; i < n; ++i) {
            const focal::box4<TO> bi{{TO(a.at(i, 0)), TO(a.at(i, 1)), TO(a.at(i, 2)), TO(a.at(i, 3))}};
            for (index_t j = 0; j < m; ++j) {
                const focal::box4<TO> bj{{TO(g.at(j, 0)), TO(g.at(j, 1)), TO(g.at(j, 2)), TO(g.at(j, 3))}};
                const TO want = giou ? focal::giou(bi, bj) : focal::iou(bi, bj);
                const TO v = out_scalar.at(i, j);
                FUZZ_CHECKF(same(v, want), "pairwise (%td, %td): %g, focal::%s gives %g\n", i, j, double(v),
                            giou ? "giou" : "iou", double(want));
                FUZZ_CHECK(same(out_simd.at(i, j), v) && same(out_par.at(i, j), v));
                if (giou) continue;
                FUZZ_CHECKF(std::isnan(v) || (v >= TO(0) && v <= TO(1)), "IoU %g\n", double(v));
                if (std::isnan(v)) {
                    const bool explained = !finite_box(bi) || !finite_box(bj) || !std::isfinite(focal::area(bi)) ||
                                           !std::isfinite(focal::area(bj));
                    FUZZ_CHECKF(explained, "NaN IoU of finite boxes with finite areas (%td, %td)\n", i, j);
                }
            }
        }
    }
}

template <class TM, class TA, class TG>
void run(byte_reader& in) {
    using T = std::common_type_t<TA, TG>;
    using TI = TA;  // max_iou
    using TB = TA;  // box targets
    const focal::max_iou_matcher matcher = read_matcher(in);
    const int layout = in.u8() % 3;
    const std::uint8_t crowd_mode = in.u8();
    focal::delta_xywh_coder coder;
    if (in.chance(64)) coder.wx = coder.wy = 10.0f, coder.ww = coder.wh = 5.0f;

    std::vector<TA> anchors;
    if (in.flag()) grid_anchors(in, anchors);
    const std::vector<TA> extra = read_boxes<TA>(in, in.count(12, 300, 4));
    anchors.insert(anchors.end(), extra.begin(), extra.end());
    const std::vector<TG> gt = read_boxes<TG>(in, in.count(6, 40, 4));
    const std::vector<TG> crowd = read_boxes<TG>(in, crowd_mode < 160 ? 0 : in.count(3, 8));
    std::vector<std::int64_t> gt_labels(gt.size() / 4);
    for (auto& l : gt_labels) l = in.chance(250) ? in.u8() % 5 : -1;

    const auto n = static_cast<index_t>(anchors.size() / 4), m = static_cast<index_t>(gt.size() / 4);
    const auto k = static_cast<index_t>(crowd.size() / 4);
    const strided_matrix<TA> av(anchors, n, 4, layout);
    const strided_matrix<TG> gv(gt, m, 4, layout == 1 ? 2 : 0);
    const strided_matrix<TG> cv(crowd, k, 4, 0);
    // crowd_mode < 128: no crowd view at all; else a (possibly empty) one.
    const focal::matrix_view<const TG> crowd_view = crowd_mode < 128 ? focal::matrix_view<const TG>{} : cv.const_view();

    check_pairwise<TA>(av, gv, layout);

    bool gt_finite = true, crowd_finite = true;
    for (index_t j = 0; j < m; ++j) gt_finite = gt_finite && finite_box(box_at(gt, j));
    for (index_t c = 0; c < k; ++c) crowd_finite = crowd_finite && finite_box(box_at(crowd, c));
    const bool valid = valid_matcher(matcher) && gt_finite && (crowd_mode < 128 || crowd_finite);

    std::vector<TM> codes_scalar(static_cast<std::size_t>(n), TM(99)), codes_simd = codes_scalar, codes_par = codes_scalar;
    std::vector<TI> iou_scalar(static_cast<std::size_t>(n), TI(-3)), iou_simd = iou_scalar, iou_par = iou_scalar;
    auto match = [&](const auto& exec, std::vector<TM>& codes, std::vector<TI>& best) {
        return succeeds([&] {
            focal::match_anchors(matcher, av.const_view(), gv.const_view(), crowd_view,
                                 focal::match_output{focal::make_view(codes.data(), n), focal::make_view(best.data(), n)}, exec);
        });
    };
    const bool ok = match(focal::exec::scalar, codes_scalar, iou_scalar);
    FUZZ_CHECKF(ok == valid, "match_anchors %s; matcher valid %d, gt finite %d, crowd finite %d\n",
                ok ? "succeeded" : "failed", valid_matcher(matcher), gt_finite, crowd_finite);
    if (!ok) return;
    FUZZ_CHECK(match(focal::exec::simd, codes_simd, iou_simd) && match(parallel(), codes_par, iou_par));

    std::vector<std::int64_t> want_codes;
    std::vector<T> want_iou;
    const std::vector<TG>* crowd_ref = crowd_mode < 128 ? nullptr : &crowd;
    if (matcher.plus_one) match_reference<T, true>(matcher, anchors, gt, crowd_ref, want_codes, want_iou);
    else match_reference<T, false>(matcher, anchors, gt, crowd_ref, want_codes, want_iou);
    for (index_t i = 0; i < n; ++i) {
        const auto code = static_cast<std::int64_t>(codes_scalar[i]);
        if (code != want_codes[i] || !same(iou_scalar[i], static_cast<TI>(want_iou[i]))) {  // context for the reports below
            std::fprintf(stderr,
                         "matcher: positive %.17g negative %.17g low-quality %d guard %d low-quality IoU %.17g crowd IoF %.17g plus_one %d\n",
                         matcher.positive_iou_threshold, matcher.negative_iou_threshold, matcher.allow_low_quality_matches,
                         matcher.zero_iou_guard, matcher.low_quality_iou_threshold, matcher.crowd_iof_threshold, matcher.plus_one);
            print_list("anchor", std::vector<double>{double(anchors[4 * i]), double(anchors[4 * i + 1]),
                                                     double(anchors[4 * i + 2]), double(anchors[4 * i + 3])});
            print_list("gt boxes", gt);
            print_list("crowd boxes", crowd);
            std::fprintf(stderr, "%td anchors, max IoU %g (reference %g)\n", n, double(iou_scalar[i]), double(want_iou[i]));
        }
        FUZZ_CHECKF(code >= -2 && code < m, "code %lld with %td gt boxes\n", static_cast<long long>(code), m);
        FUZZ_CHECKF(code == want_codes[i], "anchor %td: code %lld, the reference gives %lld\n", i,
                    static_cast<long long>(code), static_cast<long long>(want_codes[i]));
        FUZZ_CHECKF(same(iou_scalar[i], static_cast<TI>(want_iou[i])), "anchor %td: max IoU %g, the reference gives %g\n", i,
                    double(iou_scalar[i]), double(want_iou[i]));
        FUZZ_CHECK(codes_simd[i] == codes_scalar[i] && codes_par[i] == codes_scalar[i]);
        FUZZ_CHECK(same(iou_simd[i], iou_scalar[i]) && same(iou_par[i], iou_scalar[i]));
        FUZZ_CHECK(std::isnan(iou_scalar[i]) == !finite_box(as<T>(box_at(anchors, i))));
    }

    // Targets from these codes.
    bool labels_valid = true;
    for (const auto l : gt_labels) labels_valid = labels_valid && l >= 0;
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n), 77);
    const std::vector<TB> zeros(static_cast<std::size_t>(4 * n), TB(-9));
    const strided_matrix<TB> targets_scalar(zeros, n, 4, layout), targets_simd(zeros, n, 4, layout);
    const auto codes_view = focal::make_view(static_cast<const TM*>(codes_scalar.data()), n);
    const auto labels_view = focal::make_view(gt_labels.data(), m);
    index_t positives = -1, positives_simd = -1;
    const bool built = succeeds([&] {
        positives = focal::build_targets(coder, codes_view, av.const_view(), gv.const_view(), labels_view,
                                         focal::make_view(labels.data(), n), targets_scalar.view(), focal::exec::scalar);
    });
    FUZZ_CHECK(built == labels_valid);
    if (!built) return;
    std::vector<std::int64_t> labels_simd(static_cast<std::size_t>(n), 78);
    FUZZ_CHECK(succeeds([&] {
        positives_simd = focal::build_targets(coder, codes_view, av.const_view(), gv.const_view(), labels_view,
                                              focal::make_view(labels_simd.data(), n), targets_simd.view(), focal::exec::simd);
    }));
    FUZZ_CHECK(positives_simd == positives && labels_simd == labels);
    index_t count = 0;
    for (index_t i = 0; i < n; ++i) {
        const auto code = static_cast<std::int64_t>(codes_scalar[i]);
        FUZZ_CHECK(labels[i] == (code >= 0 ? gt_labels[code] : code));
        if (code < 0) {
            for (int c = 0; c < 4; ++c) FUZZ_CHECK(targets_scalar.at(i, c) == TB(0) && targets_simd.at(i, c) == TB(0));
            continue;
        }
        ++count;
        const auto a = as<TB>(box_at(anchors, i));
        const auto g = as<TB>(box_at(gt, code));
        const focal::box4<TB> want = coder.encode(g, a);
        // xsimd's log is wrong for denormal arguments (a size ratio below the smallest normal TB):
        // SIMD rows are compared with the scalar ones only above that.
        const double log_min = std::log(double(std::numeric_limits<TB>::min())) + 1.0;
        const bool comparable = !(double(want[2]) / coder.ww < log_min) && !(double(want[3]) / coder.wh < log_min);
        for (int c = 0; c < 4; ++c) {
            const TB s = targets_scalar.at(i, c), v = targets_simd.at(i, c);
            FUZZ_CHECKF(same(s, want[c]), "target (%td, %d): %g, coder.encode gives %g\n", i, c, double(s), double(want[c]));
            const TB tol = (sizeof(TB) == 4 ? TB(4e-6) : TB(1e-13)) * std::max({TB(1), std::fabs(s), std::fabs(v)});
            FUZZ_CHECKF(!comparable || same(v, s) || std::fabs(v - s) <= tol, "target (%td, %d): simd %g, scalar %g\n", i, c, double(v),
                        double(s));
            if (bounded_box(a, 1e6) && bounded_box(g, 1e6)) FUZZ_CHECKF(std::isfinite(s), "target (%td, %d) %g\n", i, c, double(s));
        }
    }
    FUZZ_CHECK(positives == count);

    // Labels written over the matches' own memory.
    std::vector<std::int64_t> in_place(codes_scalar.begin(), codes_scalar.end());
    const strided_matrix<TB> targets_again(zeros, n, 4, 0);
    FUZZ_CHECK(succeeds([&] {
        focal::build_targets(coder, focal::make_view(static_cast<const std::int64_t*>(in_place.data()), n), av.const_view(),
                             gv.const_view(), labels_view, focal::make_view(in_place.data(), n), targets_again.view(),
                             focal::exec::scalar);
    }));
    FUZZ_CHECK(in_place == labels);

    // assign_targets = match_anchors + build_targets.
    std::vector<std::int64_t> assigned(static_cast<std::size_t>(n), 79);
    const strided_matrix<TB> targets_assigned(zeros, n, 4, 0);
    index_t positives_assigned = -1;
    FUZZ_CHECK(succeeds([&] {
        positives_assigned = focal::assign_targets(matcher, coder, av.const_view(), gv.const_view(), crowd_view, labels_view,
                                                   focal::make_view(assigned.data(), n), targets_assigned.view(),
                                                   focal::exec::scalar);
    }));
    FUZZ_CHECK(positives_assigned == positives && assigned == labels);
    for (index_t i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c) FUZZ_CHECK(same(targets_assigned.at(i, c), targets_scalar.at(i, c)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    switch (in.u8() % 4) {
        case 0: run<std::int32_t, float, float>(in); break;
        case 1: run<std::int64_t, double, double>(in); break;
        case 2: run<std::int64_t, float, double>(in); break;
        default: run<std::int32_t, double, float>(in); break;
    }
    return 0;
}
