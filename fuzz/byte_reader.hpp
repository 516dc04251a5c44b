// fuzz/byte_reader.hpp: what every fuzz target shares: a reader that turns the fuzzer's bytes into
// sizes, flags and numbers, the invariant check that aborts with a message, and the rule for
// expected errors (focal::error with a non-empty message).
//
// Reads past the end give zeros, so every input decodes to some case and short inputs give small
// ones. Numbers are mostly small values on a coarse grid (boxes overlap, scores tie), with a few
// tags for the edge cases: NaN, +-inf, -0, the largest and smallest floats, denormals, raw bits and
// powers of two across the whole exponent range.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <type_traits>

#include <focal/core/error.hpp>

namespace focal_fuzz {

[[noreturn]] inline void violation(const char* what, const char* file, int line) {
    std::fprintf(stderr, "\nfocal fuzz: invariant violated: %s (%s:%d)\n", what, file, line);
    std::fflush(stderr);
    std::abort();  // libFuzzer reports the crash and saves the input
}

}  // namespace focal_fuzz

// FUZZ_CHECK(condition): an invariant of the library; a violation is a bug, never bad input.
#define FUZZ_CHECK(condition) \
    ((condition) ? static_cast<void>(0) : ::focal_fuzz::violation(#condition, __FILE__, __LINE__))
// FUZZ_CHECKF(condition, format, ...): the same with the values involved printed first.
#define FUZZ_CHECKF(condition, ...)                      \
    do {                                                 \
        if (!(condition)) {                              \
            std::fprintf(stderr, "\nfocal fuzz: ");      \
            std::fprintf(stderr, __VA_ARGS__);           \
            ::focal_fuzz::violation(#condition, __FILE__, __LINE__); \
        }                                                \
    } while (0)

namespace focal_fuzz {

// Runs f; true when it returns, false when it throws focal::error (expected for bad input; the
// message must say something). Any other exception escapes and libFuzzer reports it.
template <class F>
bool succeeds(F&& f) {
    try {
        f();
        return true;
    } catch (const focal::error& e) {
        FUZZ_CHECKF(e.what() != nullptr && e.what()[0] != '\0', "focal::error with an empty message\n");
        return false;
    }
}

// Prints `name: a b c` to stderr (context for a failed check).
template <class V>
void print_list(const char* name, const V& values) {
    std::fprintf(stderr, "%s:", name);
    for (const auto& v : values) std::fprintf(stderr, " %.9g", static_cast<double>(v));
    std::fprintf(stderr, "\n");
}

// Equal values, or both NaN (+0 and -0 are equal).
template <class T>
bool same(T a, T b) {
    return a == b || (std::isnan(a) && std::isnan(b));
}

class byte_reader {
public:
    byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::size_t remaining() const { return size_ - pos_; }
    bool exhausted() const { return pos_ >= size_; }

    std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(u16()) | (static_cast<std::uint32_t>(u16()) << 16); }
    std::uint64_t u64() { return static_cast<std::uint64_t>(u32()) | (static_cast<std::uint64_t>(u32()) << 32); }
    bool flag() { return (u8() & 1) != 0; }
    // True with probability about n / 256.
    bool chance(unsigned n) { return u8() < n; }

    // An integer in [lo, hi] (hi - lo < 2^32).
    std::int64_t range(std::int64_t lo, std::int64_t hi) {
        const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
        const std::uint64_t v = span <= 256 ? u8() : span <= 65536 ? u16() : u32();
        return lo + static_cast<std::int64_t>(v % span);
    }

    // A number of items in [0, max]: usually small, and never many more than the bytes left can
    // describe (bytes_per_item each), so that runs stay fast and sizes track the input's length.
    std::size_t count(std::size_t small_max, std::size_t max, std::size_t bytes_per_item = 1) {
        const std::uint8_t tag = u8();
        const std::size_t n = tag < 224 ? static_cast<std::size_t>(tag) % (small_max + 1)
                                        : static_cast<std::size_t>(range(0, static_cast<std::int64_t>(max)));
        return std::min(n, remaining() / bytes_per_item + 2);
    }

    // A floating-point value; one tag byte, then what the tag asks for.
    template <class T>
    T number() {
        static_assert(std::is_floating_point_v<T>);
        using lim = std::numeric_limits<T>;
        const std::uint8_t tag = u8();
        if (tag < 160) return static_cast<T>(static_cast<int>(tag) - 32) * T(0.5);  // [-16, 63.5]
        if (tag < 184) return static_cast<T>(static_cast<std::int16_t>(u16())) / T(16);
        if (tag < 192) return static_cast<T>(u8()) / T(255);  // [0, 1]
        if (tag < 200) {                                     // raw bits: anything, NaN payloads included
            if constexpr (sizeof(T) == 4) {
                const std::uint32_t bits = u32();
                T v;
                std::memcpy(&v, &bits, sizeof v);
                return v;
            } else {
                const std::uint64_t bits = u64();
                T v;
                std::memcpy(&v, &bits, sizeof v);
                return v;
            }
        }
        switch (tag) {
            case 200: return lim::quiet_NaN();
            case 201: return lim::infinity();
            case 202: return -lim::infinity();
            case 203: return -T(0);
            case 204: return lim::max();
            case 205: return lim::lowest();
            case 206: return lim::denorm_min();
            case 207: return lim::min();
            case 208: return lim::epsilon();
            case 209: return T(1e30);
            case 210: return T(-1e30);
            case 211: return T(1) - lim::epsilon() / 2;
            case 212: return -lim::quiet_NaN();
            case 213: return T(1e-30);
            default: break;
        }
        // A small integer times a power of two, from denormal to near overflow.
        constexpr int lo = lim::min_exponent - lim::digits, hi = lim::max_exponent - 8;
        const int exponent = lo + (tag - 214) * (hi - lo) / 41;
        return std::ldexp(static_cast<T>(static_cast<std::int8_t>(u8())), exponent);
    }

    // A probability-like score: mostly in [0, 1] on a grid of 1/32 (ties), sometimes any number.
    template <class T>
    T score() {
        const std::uint8_t tag = u8();
        if (tag < 200) return static_cast<T>(tag % 33) / T(32);
        if (tag < 230) return static_cast<T>(u16()) / T(65535);
        return number<T>();
    }

    // A threshold in [0, 1] (grid values, 0 and 1 themselves included), sometimes outside it or NaN.
    double unit_threshold() {
        const std::uint8_t tag = u8();
        if (tag < 200) return static_cast<double>(tag % 21) / 20.0;
        if (tag < 240) return static_cast<double>(u32()) / 4294967295.0;
        return number<double>();
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// An xyxy box: usually a well-formed box on the grid (possibly empty), sometimes scaled by a power
// of two (tiny to huge, denormal areas included) or four arbitrary numbers.
template <class T>
void read_box(byte_reader& in, T* out) {
    const std::uint8_t mode = in.u8();
    if (mode < 170) {
        const T x = static_cast<T>(in.u8() % 64), y = static_cast<T>(in.u8() % 64);
        const T w = static_cast<T>(in.u8() % 48), h = static_cast<T>(in.u8() % 48);
        const T unit = mode < 120 ? T(1) : T(0.25);
        out[0] = x * unit, out[1] = y * unit, out[2] = (x + w) * unit, out[3] = (y + h) * unit;
    } else if (mode < 200) {
        using lim = std::numeric_limits<T>;
        const int exponent = static_cast<int>(in.range(lim::min_exponent - lim::digits - 8, lim::max_exponent - 8));
        const T x = static_cast<T>(in.u8() % 16), y = static_cast<T>(in.u8() % 16);
        const T w = static_cast<T>(in.u8() % 12), h = static_cast<T>(in.u8() % 12);
        out[0] = std::ldexp(x, exponent), out[1] = std::ldexp(y, exponent);
        out[2] = std::ldexp(x + w, exponent), out[3] = std::ldexp(y + h, exponent);
    } else {
        for (int c = 0; c < 4; ++c) out[c] = in.number<T>();
    }
}

}  // namespace focal_fuzz
