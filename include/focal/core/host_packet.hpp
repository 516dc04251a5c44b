// focal/core/host_packet.hpp: the packet a host driver runs its write-once kernels with.
//
// host_packet_t<T, Simd> is xsimd's widest batch of T for the SIMD execution policies when the SIMD
// backend is built in (simd/packet.hpp gives its packet_traits), and T itself otherwise: one
// element at a time through the same kernel code.
#pragma once

#include "../config.hpp"
#include "packet.hpp"

#if FOCAL_HAS_XSIMD
#include "../simd/packet.hpp"
#endif

namespace focal {

template <class T, bool Simd>
struct host_packet {
    using type = T;
};
#if FOCAL_HAS_XSIMD
template <class T>
struct host_packet<T, true> {
    using type = xsimd::batch<T>;
};
#endif
template <class T, bool Simd>
using host_packet_t = typename host_packet<T, Simd>::type;

}  // namespace focal
