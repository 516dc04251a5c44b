// io/npy_format.cpp: the .npy header parser and writer and the dtype table (the format facts are in
// npy_format.hpp). Every size read from a header is checked against the bytes actually there.
#include "io/npy_format.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>

#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::io::detail {
namespace {

std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return std::nullopt;
    return a * b;
}

// The header is a Python dict literal, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".
// A tiny parser of exactly that grammar: numpy's writer is the only producer that matters.
class npy_header_parser {
public:
    struct result {
        std::string descr;
        bool fortran_order = false;
        std::vector<std::size_t> shape;
    };

    // `context` starts every message: "read_npz: '<file>' member '<name>'".
    npy_header_parser(std::string_view text, std::string context) : s_(text), context_(std::move(context)) {}

    result parse() {
        result r;
        bool have_descr = false, have_order = false, have_shape = false;
        skip_space();
        expect('{');
        for (;;) {
            skip_space();
            if (peek() == '}') break;
            const std::string key = string_literal();
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                if (peek() != '\'' && peek() != '"')
                    error("has a structured dtype; expected a descr string such as '<f4'");
                r.descr = string_literal();
                have_descr = duplicate(have_descr, key);
            } else if (key == "fortran_order") {
                r.fortran_order = boolean();
                have_order = duplicate(have_order, key);
            } else if (key == "shape") {
                r.shape = tuple();
                have_shape = duplicate(have_shape, key);
            } else {
                error("has an unexpected key '" + key + "'; expected descr, fortran_order and shape");
            }
            skip_space();
            if (peek() == ',') ++i_;
            else if (peek() != '}') error("has a malformed header dict");
        }
        ++i_;
        skip_space();
        if (i_ != s_.size()) error("has a malformed header dict (text after '}')");
        if (!have_descr || !have_order || !have_shape)
            error("has a header without descr, fortran_order or shape");
        return r;
    }

private:
    [[noreturn]] void error(const std::string& message) const { throw focal::error(context_ + " " + message); }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    void skip_space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
    }
    void expect(char c) {
        if (peek() != c) error(concat("has a malformed header dict (expected '", c, "' at byte ", i_, ")"));
        ++i_;
    }
    bool duplicate(bool seen, const std::string& key) const {
        if (seen) error("has the key '" + key + "' twice in its header");
        return true;
    }
    std::string string_literal() {
        const char quote = peek();
        if (quote != '\'' && quote != '"') error("has a malformed header dict (expected a quoted string)");
        const std::size_t end = s_.find(quote, i_ + 1);
        if (end == std::string_view::npos) error("has a malformed header dict (unterminated string)");
        std::string out(s_.substr(i_ + 1, end - i_ - 1));
        i_ = end + 1;
        return out;
    }
    bool boolean() {
        if (s_.substr(i_, 4) == "True") return i_ += 4, true;
        if (s_.substr(i_, 5) == "False") return i_ += 5, false;
        error("has a fortran_order that is neither True nor False");
    }
    std::vector<std::size_t> tuple() {
        std::vector<std::size_t> shape;
        expect('(');
        for (;;) {
            skip_space();
            if (peek() == ')') break;
            shape.push_back(integer());
            skip_space();
            if (peek() == 'L') ++i_;  // Python 2's long literals, as old numpy wrote them
            skip_space();
            if (peek() == ',') ++i_;
            else if (peek() != ')') error("has a malformed shape tuple");
        }
        ++i_;
        return shape;
    }
    std::size_t integer() {
        if (peek() < '0' || peek() > '9') error("has a shape that is not a tuple of non-negative integers");
        std::size_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            const auto digit = static_cast<std::size_t>(peek() - '0');
            if (v > (std::numeric_limits<std::size_t>::max() - digit) / 10)
                error("has a shape dimension that overflows");
            v = v * 10 + digit;
            ++i_;
        }
        return v;
    }

    std::string_view s_;
    std::size_t i_ = 0;
    std::string context_;
};

template <class Src, class Dst>
std::vector<Dst> convert(bytes_view data, std::size_t count) {
    std::vector<Dst> out(count);
    if constexpr (std::is_same_v<Src, Dst>) {
        if (count) std::memcpy(out.data(), data.data(), count * sizeof(Dst));
    } else {
        for (std::size_t i = 0; i < count; ++i) {
            // A numpy bool is a byte, any nonzero value True; a C++ bool holding 2 is undefined.
            using Raw = std::conditional_t<std::is_same_v<Src, bool>, std::uint8_t, Src>;
            Raw v;
            std::memcpy(&v, data.data() + i * sizeof(Raw), sizeof(Raw));
            if constexpr (std::is_same_v<Src, bool>) out[i] = v != 0 ? 1 : 0;
            else out[i] = static_cast<Dst>(v);
        }
    }
    return out;
}

struct descr_info {
    std::string_view code;  // without the byte-order character
    std::size_t itemsize;
    npz_array (*convert)(bytes_view, std::size_t);
};

template <class Src, class Dst>
npz_array make(bytes_view data, std::size_t count) {
    return npz_array{{}, convert<Src, Dst>(data, count)};
}

constexpr descr_info descr_table[] = {
    {"f4", 4, make<float, float>},          {"f8", 8, make<double, double>},
    {"i8", 8, make<std::int64_t, std::int64_t>}, {"i4", 4, make<std::int32_t, std::int64_t>},
    {"i2", 2, make<std::int16_t, std::int64_t>}, {"i1", 1, make<std::int8_t, std::int64_t>},
    {"u4", 4, make<std::uint32_t, std::int64_t>}, {"u2", 2, make<std::uint16_t, std::int64_t>},
    {"u1", 1, make<std::uint8_t, std::int64_t>}, {"b1", 1, make<bool, std::int64_t>},
};

std::string_view descr_of(dtype type) {
    switch (type) {
        case dtype::float32: return "<f4";
        case dtype::float64: return "<f8";
        case dtype::int64: return "<i8";
    }
    return "";
}

}  // namespace

std::string shape_string(const std::vector<std::size_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

std::optional<std::size_t> checked_count(const std::vector<std::size_t>& shape) {
    if (std::find(shape.begin(), shape.end(), std::size_t{0}) != shape.end()) return std::size_t{0};
    std::size_t n = 1;
    for (std::size_t d : shape) {
        auto m = checked_mul(n, d);
        if (!m) return std::nullopt;
        n = *m;
    }
    return n;
}

npz_array parse_npy(bytes_view bytes, const std::string& context) {
    auto npy_fail = [&](const std::string& message) {  // always throws
        throw focal::error(concat(context, " ", message));
    };
    static constexpr char magic[] = "\x93NUMPY";
    if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0)
        npy_fail("is not a .npy array (no \\x93NUMPY magic)");
    const unsigned major = bytes[6], minor = bytes[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        npy_fail(concat("has .npy version ", major, ".", minor, "; expected 1.0, 2.0 or 3.0"));
    std::uint64_t header_start = 10, header_len = load<std::uint16_t>(bytes, 8);
    if (major >= 2) {
        if (bytes.size() < 12) npy_fail("has a truncated .npy header");
        header_start = 12;
        header_len = load<std::uint32_t>(bytes, 8);
    }
    if (!fits(header_start, header_len, bytes.size()))
        npy_fail(concat("has a .npy header of ", header_len, " bytes but only ", bytes.size() - header_start,
                        " follow (truncated)"));
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + header_start), header_len);
    const auto header = npy_header_parser(text, context).parse();

    if (header.fortran_order) npy_fail("is in Fortran order; expected C order (save np.ascontiguousarray(a))");
    std::string_view code = header.descr;
    const char order = code.empty() ? '?' : code[0];
    if (order == '<' || order == '|' || order == '=') code.remove_prefix(1);
    const descr_info* info = nullptr;
    for (const auto& d : descr_table)
        if (d.code == code) info = &d;
    if (!info)
        npy_fail(concat("has dtype '", header.descr,
                        "'; expected little-endian float32 '<f4', float64 '<f8' or an integer/bool "
                        "('<i8' '<i4' '<i2' '|i1' '<u4' '<u2' '|u1' '|b1')"));
    const auto count = checked_count(header.shape);
    const auto needed = count ? checked_mul(*count, info->itemsize) : std::nullopt;
    if (!needed) npy_fail(concat("has shape ", shape_string(header.shape), " whose size overflows"));
    const std::uint64_t data_start = header_start + header_len;
    if (*needed != bytes.size() - data_start)
        npy_fail(concat("has ", bytes.size() - data_start, " data bytes, but shape ", shape_string(header.shape),
                        " of '", header.descr, "' needs ", *needed));
    npz_array array = info->convert(bytes.subspan(data_start), *count);
    array.shape = header.shape;
    return array;
}

std::string npy_header(const npz_array& a) {
    std::string dict = concat("{'descr': '", descr_of(a.type()), "', 'fortran_order': False, 'shape': ",
                              shape_string(a.shape), ", }");
    const std::size_t pad = 64 - (10 + dict.size() + 1) % 64;
    dict.append(pad, ' ');
    dict += '\n';
    std::string out = "\x93NUMPY\x01";
    out += '\0';
    append(out, static_cast<std::uint16_t>(dict.size()));
    return out + dict;
}

}  // namespace retinanet::io::detail
