// focal/core/packet.hpp: the few operations a write-once kernel needs from its value type.
//
// A kernel is written against packet_traits<P> and instantiated with P = float / double (one
// element at a time) or P = xsimd::batch<float/double> (simd/packet.hpp): load, store, the lane
// indices 0..width-1, and the horizontal sum.
#pragma once

#include "../config.hpp"

namespace focal {

template <class P>
struct packet_traits {
    using scalar = P;
    static constexpr int width = 1;
    static FOCAL_INLINE P load(const scalar* p) noexcept { return *p; }
    static FOCAL_INLINE void store(scalar* p, P v) noexcept { *p = v; }
    static FOCAL_INLINE P lane_index() noexcept { return P(0); }
    static FOCAL_INLINE double sum(P v) noexcept { return static_cast<double>(v); }
};

}  // namespace focal
