// data/random.hpp: reproducible random numbers for data generation and augmentation.
//
// The engine is std::mt19937_64, whose output sequence the C++ standard fixes. The standard's
// distributions (uniform_real_distribution, normal_distribution, ...) are NOT fixed: libstdc++,
// libc++ and MSVC give different numbers for the same engine state. So every draw here is made
// from the raw 64-bit outputs by code in this file, which makes the same seed give the same
// numbers on every platform.
//
// The floating-point draws are defined in random.cpp, compiled with -ffp-contract=off like the rest
// of retinanet_data: inline copies compiled elsewhere with FMA contraction could round differently.
//
// Per-item streams: seed_for(seed, stream, index) hashes its inputs with splitmix64, so item i of a
// dataset is a pure function of (seed, i): generation can resume at any step and run in parallel.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>

namespace retinanet::data {

// splitmix64's finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// The seed of item `index` of stream `stream` (e.g. a split) under the user's seed.
constexpr std::uint64_t seed_for(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    return splitmix64(splitmix64(splitmix64(seed) ^ stream) + index);
}

namespace detail {
// 4096 equiprobable levels of N(0, 1): the mid-quantiles Phi^-1((i + 0.5) / 4096) (Acklam's
// approximation), mirrored so the mean is exactly 0, rescaled to unit variance and rounded to
// multiples of 2^-16 (so that last-ulp differences between libms cannot change them). Tails end at
// +-3.5 sigma, invisible in 8-bit image noise.
const std::array<float, 4096>& normal_levels();
}  // namespace detail

class random {
public:
    explicit random(std::uint64_t seed) : engine_(seed) {}

    std::uint64_t bits() { return engine_(); }

    // Uniform in [0, 1), 53 random bits.
    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi);

    // Uniform integer in [lo, hi] (inclusive), unbiased (rejection of the short last block).
    std::int64_t uniform_int(std::int64_t lo, std::int64_t hi) {
        const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
        if (span == 0) return static_cast<std::int64_t>(engine_());  // the full 64-bit range
        const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % span + 1) % span;
        std::uint64_t x = engine_();
        while (x > limit) x = engine_();
        return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + x % span);
    }
    int uniform_int(int lo, int hi) {
        return static_cast<int>(uniform_int(static_cast<std::int64_t>(lo), static_cast<std::int64_t>(hi)));
    }

    bool bernoulli(double p) { return uniform() < p; }

    // exp(uniform(log lo, log hi)): scales and sizes spread evenly over octaves.
    double log_uniform(double lo, double hi);

    // N(0, 1) from the 4096-level table (see detail::normal_levels): one table look-up per draw.
    float normal();

    std::mt19937_64& engine() { return engine_; }

private:
    std::mt19937_64 engine_;
};

}  // namespace retinanet::data
