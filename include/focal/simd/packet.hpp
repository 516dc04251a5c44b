// focal/simd/packet.hpp: packet_traits for xsimd batches (xsimd 8.1: unaligned loads, hadd).
#pragma once

#include <xsimd/xsimd.hpp>

#include "../config.hpp"
#include "../core/packet.hpp"

namespace focal {

template <class T, class A>
struct packet_traits<xsimd::batch<T, A>> {
    using P = xsimd::batch<T, A>;
    using scalar = T;
    static constexpr int width = static_cast<int>(P::size);
    static FOCAL_INLINE P load(const T* p) noexcept { return P::load_unaligned(p); }
    static FOCAL_INLINE void store(T* p, const P& v) noexcept { v.store_unaligned(p); }
    static FOCAL_INLINE P lane_index() noexcept {
        alignas(A::alignment()) T lanes[P::size];
        for (std::size_t i = 0; i < P::size; ++i) lanes[i] = static_cast<T>(i);
        return P::load_aligned(lanes);
    }
    static FOCAL_INLINE double sum(const P& v) noexcept { return static_cast<double>(xsimd::hadd(v)); }
};

}  // namespace focal
