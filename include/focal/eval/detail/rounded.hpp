// focal/eval/detail/rounded.hpp: a double the optimizer must round and keep as it is.
//
// pycocotools' C code and numpy round every product to double. A compiler may fuse a product with
// a later addition into one FMA (GCC does so across statements by default, even at -std=c++20),
// which rounds once instead of twice and can move a result by an ulp: an IoU exactly on a
// threshold would then flip. rounded(a * b) is an opaque copy, so the product is rounded first.
#pragma once

#include "../../config.hpp"

namespace focal::detail {

FOCAL_INLINE double rounded(double x) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
    __asm__("" : "+x"(x));  // in an SSE register, unseen by the optimizer
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__("" : "+w"(x));
#else
    volatile double opaque = x;
    x = opaque;
#endif
    return x;
}

}  // namespace focal::detail
