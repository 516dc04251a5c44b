// focal/core/execution.hpp: how a host driver runs — scalar, SIMD, or SIMD on several threads.
//
//   focal::exec::scalar          one thread, one element at a time (the reference path)
//   focal::exec::simd            one thread, xsimd batches (falls back to scalar without xsimd)
//   focal::exec::parallel        SIMD on all hardware threads of the shared pool
//   focal::exec::parallel_policy{.threads = n}   ... on n threads (0: all)
//
// Work is cut into blocks whose size depends only on the input's shape, never on the thread
// count, and partial sums are combined in block order: exec::simd and exec::parallel{n} give
// bit-identical results for every n. exec::scalar agrees with them to float rounding.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <type_traits>

#include "../config.hpp"
#include "thread_pool.hpp"

namespace focal::exec {

struct scalar_policy {};
struct simd_policy {};
struct parallel_policy {
    std::size_t threads = 0;        // 0: std::thread::hardware_concurrency()
    thread_pool* pool = nullptr;    // nullptr: thread_pool::shared()
    std::size_t min_elements = 1 << 16;  // inputs smaller than this run on the calling thread

    std::size_t thread_count() const noexcept {
        const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
        return threads ? threads : hw;
    }
    thread_pool& get_pool() const { return pool ? *pool : thread_pool::shared(); }
};

inline constexpr scalar_policy scalar{};
inline constexpr simd_policy simd{};
inline constexpr parallel_policy parallel{};

template <class P>
inline constexpr bool is_policy_v = std::is_same_v<std::remove_cvref_t<P>, scalar_policy> ||
                                    std::is_same_v<std::remove_cvref_t<P>, simd_policy> ||
                                    std::is_same_v<std::remove_cvref_t<P>, parallel_policy>;

// What a driver uses when the caller does not say: SIMD when it is built in.
using default_policy = simd_policy;

}  // namespace focal::exec
