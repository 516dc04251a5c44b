// io/little_endian.hpp: the fixed-width fields of zip records and .npy headers, which both formats
// store little-endian. Fields and .npy values are copied with memcpy, without swapping, so the host
// must be little-endian too.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace retinanet::io::detail {

static_assert(std::endian::native == std::endian::little, "io/ assumes a little-endian host");

using bytes_view = std::span<const std::uint8_t>;

// The field of type T at `pos`, whose bounds the caller has checked.
template <class T>
T load(bytes_view bytes, std::uint64_t pos) {
    T v;
    std::memcpy(&v, bytes.data() + pos, sizeof v);
    return v;
}

// True when [pos, pos + n) lies inside [0, limit); written so that no sum can overflow.
inline bool fits(std::uint64_t pos, std::uint64_t n, std::uint64_t limit) { return n <= limit && pos <= limit - n; }

// Appends the field `v` to `out`.
template <class T>
void append(std::string& out, T v) {
    char b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    out.append(b, sizeof v);
}

}  // namespace retinanet::io::detail
