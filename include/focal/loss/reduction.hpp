// focal/loss/reduction.hpp: how a driver reduces elementwise losses, and where it writes.
//
//   reduction::none()        returns the sum; the elementwise values go to out.values (loss_output.hpp)
//   reduction::sum()         returns the sum
//   reduction::mean()        returns the sum / number of contributing elements (ignored ones do
//                            not count; 0 when nothing contributes)
//   reduction::divide_by(n)  returns the sum / n, e.g. n = max(1, number of positive anchors)
// The gradient a driver writes is the gradient of the returned value (so it is scaled by 1 / count
// or 1 / n); ignored elements get gradient 0. Sums accumulate in double.
#pragma once

#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"

namespace focal {

struct reduction {
    enum class kind { none, sum, mean, normalizer };
    kind how = kind::sum;
    double normalizer = 1.0;

    static constexpr reduction none() noexcept { return {kind::none, 1.0}; }
    static constexpr reduction sum() noexcept { return {kind::sum, 1.0}; }
    static constexpr reduction mean() noexcept { return {kind::mean, 1.0}; }
    static constexpr reduction divide_by(double n) noexcept { return {kind::normalizer, n}; }

    // The factor that turns the sum into the returned value, given the contributing count.
    // FOCAL_HD: the CUDA drivers evaluate it on the device when the count is known there only.
    FOCAL_HD double scale(double count) const noexcept {
        switch (how) {
            case kind::mean: return count > 0 ? 1.0 / count : 0.0;
            case kind::normalizer: return 1.0 / normalizer;
            default: return 1.0;
        }
    }
};

inline void validate(const reduction& r, const char* where) {
    if (r.how == reduction::kind::normalizer)
        detail::require(std::isfinite(r.normalizer) && r.normalizer > 0, where, "reduction::divide_by(normalizer)",
                        "finite and > 0", r.normalizer);
}

}  // namespace focal
