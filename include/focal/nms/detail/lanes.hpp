// focal/nms/detail/lanes.hpp: reductions of a comparison result over the lanes of a packet.
//
// any_lane(m) is true when some lane of m is set; m is a bool (scalar kernels) or an xsimd
// batch_bool (SIMD kernels), so one kernel serves both.
#pragma once

#include "../../config.hpp"

#if FOCAL_HAS_XSIMD
#include <xsimd/xsimd.hpp>
#endif

namespace focal::detail {

FOCAL_INLINE bool any_lane(bool m) noexcept { return m; }

#if FOCAL_HAS_XSIMD
template <class T, class A>
FOCAL_INLINE bool any_lane(const xsimd::batch_bool<T, A>& m) noexcept {
    return xsimd::any(m);
}
#endif

}  // namespace focal::detail
