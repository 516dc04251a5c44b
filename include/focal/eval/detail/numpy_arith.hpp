// focal/eval/detail/numpy_arith.hpp: numpy's own arithmetic where pycocotools relies on it, so
// that focal's thresholds and stats are pycocotools' bit for bit.
//
//   numpy_linspace(start, stop, num)  i * step + start, step = (stop - start) / (num - 1), the
//                                     last value stop: .50:.05:.95 has 0.8999999999999999
//   numpy_pairwise_sum(values)        np.add.reduce on a contiguous double array (what np.mean
//                                     sums): blocks of up to 128 values summed in 8 lanes, larger
//                                     ranges split in two halves (cut at a multiple of 8)
#pragma once

#include <cstddef>
#include <vector>

#include "../../core/view.hpp"
#include "rounded.hpp"

namespace focal::detail {

inline std::vector<double> numpy_linspace(double start, double stop, index_t num) {
    std::vector<double> v(static_cast<std::size_t>(num < 0 ? 0 : num));
    if (num == 1) v[0] = start;
    if (num < 2) return v;
    const double step = (stop - start) / static_cast<double>(num - 1);
    for (index_t i = 0; i < num; ++i) v[static_cast<std::size_t>(i)] = rounded(static_cast<double>(i) * step) + start;
    v.back() = stop;
    return v;
}

inline double numpy_pairwise_sum(const double* a, std::size_t n) {
    if (n < 8) {
        double s = 0.0;
        for (std::size_t i = 0; i < n; ++i) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        std::size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + static_cast<std::size_t>(j)];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) s += a[i];
        return s;
    }
    std::size_t half = n / 2;
    half -= half % 8;
    return numpy_pairwise_sum(a, half) + numpy_pairwise_sum(a + half, n - half);
}

}  // namespace focal::detail
