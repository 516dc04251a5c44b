// Per-anchor RetinaNet labels for the loss tests and benchmarks (host, host-side CUDA and CUDA):
// -2 (ignored) with probability p_ignore, a class in [0, k) with probability p_positive, else -1
// (background). No doctest: tests/cuda and benchmarks/cuda include it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <focal/core/labels.hpp>

namespace focal_test_support {

inline std::vector<std::int64_t> random_labels(std::size_t n, std::int64_t k, unsigned seed, double p_ignore = 0.05,
                                               double p_positive = 0.1) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> d(0, 1);
    std::uniform_int_distribution<std::int64_t> cls(0, k - 1);
    std::vector<std::int64_t> labels(n);
    for (auto& l : labels) {
        const double r = d(rng);
        l = r < p_ignore ? focal::ignored_label : (r < p_ignore + p_positive ? cls(rng) : focal::background_label);
    }
    return labels;
}

}  // namespace focal_test_support
