// focal/nms/detail/radix_sort.hpp: stable LSD radix sort of unsigned keys carrying a 32-bit payload.
//
// Equal keys keep their input order, so sorting (key, index) pairs that arrive in index order gives
// torch's stable sort. Digits are 11 bits (three passes for 32-bit keys); a digit that is the same
// in every key is skipped, so keys with few significant bits cost fewer passes.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace focal::detail {

template <class Key>
    requires std::is_unsigned_v<Key>
void radix_sort(std::vector<Key>& keys, std::vector<std::uint32_t>& values) {
    constexpr int bits = 11, radix = 1 << bits, digits = (8 * static_cast<int>(sizeof(Key)) + bits - 1) / bits;
    const std::size_t n = keys.size();
    if (n < 2) return;
    std::vector<std::uint32_t> count(static_cast<std::size_t>(digits) * radix, 0);
    for (const Key k : keys)
        for (int d = 0; d < digits; ++d) ++count[d * radix + ((k >> (bits * d)) & (radix - 1))];
    std::vector<Key> keys_tmp(n);
    std::vector<std::uint32_t> values_tmp(n);
    for (int d = 0; d < digits; ++d) {
        std::uint32_t* c = &count[static_cast<std::size_t>(d) * radix];
        const int shift = bits * d;
        if (c[(keys[0] >> shift) & (radix - 1)] == n) continue;  // this digit is the same everywhere
        std::uint32_t offset = 0;
        for (int b = 0; b < radix; ++b) offset += std::exchange(c[b], offset);
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t to = c[(keys[i] >> shift) & (radix - 1)]++;
            keys_tmp[to] = keys[i];
            values_tmp[to] = values[i];
        }
        keys.swap(keys_tmp);
        values.swap(values_tmp);
    }
}

// An unsigned key whose ascending order is the descending order of x (x not NaN; -0 ranks as +0).
template <class T>
    requires std::is_floating_point_v<T>
auto descending_key(T x) noexcept {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    static_assert(sizeof(T) == sizeof(U), "float or double scores");
    constexpr U sign = U(1) << (8 * sizeof(U) - 1);
    const U u = std::bit_cast<U>(x + T(0));  // -0 + 0 = +0: torch ranks -0 and +0 as equal
    const U ascending = (u & sign) ? U(~u) : U(u | sign);
    return U(~ascending);
}

}  // namespace focal::detail
