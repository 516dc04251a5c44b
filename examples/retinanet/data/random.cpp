// data/random.cpp: the floating-point draws of random.hpp (compiled with -ffp-contract=off).
#include "random.hpp"

#include <cmath>
#include <cstddef>

namespace retinanet::data {
namespace {

// Phi^-1(p) for p in (0, 0.5], Acklam's rational approximation (relative error < 1.2e-9).
double normal_quantile_lower(double p) {
    if (p < 0.02425) {
        const double q = std::sqrt(-2 * std::log(p));
        return (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q -
                  2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00) /
               ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q +
                 3.754408661907416e+00) * q + 1);
    }
    const double q = p - 0.5, r = q * q;
    return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r +
              1.383577518672690e+02) * r - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q /
           (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r +
              6.680131188771972e+01) * r - 1.328068155288572e+01) * r + 1);
}

}  // namespace

namespace detail {

const std::array<float, 4096>& normal_levels() {
    static const std::array<float, 4096> levels = [] {
        constexpr int n = 4096;
        std::array<double, n / 2> lower{};
        double sum_sq = 0;
        for (int i = 0; i < n / 2; ++i) {
            lower[static_cast<std::size_t>(i)] = normal_quantile_lower((i + 0.5) / n);
            sum_sq += 2 * lower[static_cast<std::size_t>(i)] * lower[static_cast<std::size_t>(i)];
        }
        const double scale = 1 / std::sqrt(sum_sq / n);
        std::array<float, n> out{};
        for (int i = 0; i < n / 2; ++i) {
            const double v = std::round(lower[static_cast<std::size_t>(i)] * scale * 65536) / 65536;
            out[static_cast<std::size_t>(i)] = static_cast<float>(v);
            out[static_cast<std::size_t>(n - 1 - i)] = static_cast<float>(-v);
        }
        return out;
    }();
    return levels;
}

}  // namespace detail

double random::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double random::log_uniform(double lo, double hi) { return std::exp(uniform(std::log(lo), std::log(hi))); }

float random::normal() { return detail::normal_levels()[engine_() >> 52]; }

}  // namespace retinanet::data
