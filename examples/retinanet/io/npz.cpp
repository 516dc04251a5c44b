// io/npz.cpp: the zip container (central directory, zip64, stored and deflate members), the .npy
// header and the atomic writer. Every size and offset read from the file is checked against the
// bytes actually there before it is used, so a hostile file can cost at most a bounded multiple of
// its own size in memory (1x for stored data, deflate's 1032:1 for compressed data).
#include "io/npz.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <utility>

#include <csignal>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <focal/core/error.hpp>

namespace retinanet::io {
namespace {

namespace fs = std::filesystem;
using focal::detail::concat;
using bytes_view = std::span<const std::uint8_t>;

// .npy data and zip fields are little-endian; values are copied with memcpy, without swapping.
static_assert(std::endian::native == std::endian::little, "npz.cpp assumes a little-endian host");

constexpr std::uint32_t local_header_signature = 0x04034b50;
constexpr std::uint32_t central_header_signature = 0x02014b50;
constexpr std::uint32_t eocd_signature = 0x06054b50;
constexpr std::uint32_t zip64_eocd_signature = 0x06064b50;
constexpr std::uint32_t zip64_locator_signature = 0x07064b50;
constexpr std::size_t local_header_size = 30;
constexpr std::size_t central_header_size = 46;
constexpr std::size_t eocd_size = 22;
constexpr std::size_t zip64_eocd_size = 56;
constexpr std::size_t zip64_locator_size = 20;
// Deflate cannot expand data more than 1032:1 (258-byte matches coded in 2 bits); a member that
// declares more is corrupt, and the bound keeps a forged size from allocating without limit.
constexpr std::uint64_t max_deflate_ratio = 1032;

std::string quoted(const fs::path& file) { return concat("'", file.string(), "'"); }

std::string shape_string(const std::vector<std::size_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return std::nullopt;
    return a * b;
}

// A zero dimension makes the product 0 however large the others are (numpy agrees).
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

std::uint32_t crc32_of(std::uint32_t crc, const void* data, std::size_t size) {
    if (size == 0) return crc;
    return static_cast<std::uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(data), size));
}

std::string hex32(std::uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    std::string s = "0x00000000";
    for (int i = 0; i < 8; ++i) s[9 - i] = digits[(v >> (4 * i)) & 0xf];
    return s;
}

// ---------------------------------------------------------------------------------------------
// Reading

// Little-endian fields of a buffer whose bounds the caller has checked.
template <class T>
T load(bytes_view bytes, std::uint64_t pos) {
    T v;
    std::memcpy(&v, bytes.data() + pos, sizeof v);
    return v;
}

// True when [pos, pos + n) lies inside [0, limit); written so that no sum can overflow.
bool fits(std::uint64_t pos, std::uint64_t n, std::uint64_t limit) { return n <= limit && pos <= limit - n; }

class archive_reader {
public:
    archive_reader(const fs::path& file, bytes_view bytes) : file_(file), bytes_(bytes) {}

    npz_archive read() {
        locate_central_directory();
        npz_archive archive;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;  // member [begin, end)
        std::uint64_t pos = cd_offset_;
        const std::uint64_t cd_end = cd_offset_ + cd_size_;
        for (std::uint64_t i = 0; i < entries_; ++i) {
            entry e = central_entry(pos, cd_end);
            bytes_view member = member_bytes(e, extents);
            std::string key = e.name.substr(0, e.name.size() - 4);
            if (archive.count(key)) fail("has two members named '", e.name, "'; member names must be unique");
            std::vector<std::uint8_t> inflated;
            if (e.method == 8) {
                inflated = inflate_member(e, member);
                member = inflated;
            }
            const std::uint32_t crc = crc32_of(0, member.data(), member.size());
            if (crc != e.crc)
                fail("member '", e.name, "' has CRC-32 ", hex32(crc), ", the central directory records ",
                     hex32(e.crc), " (the file is corrupt)");
            archive.emplace(std::move(key), parse_npy(member, concat("member '", e.name, "'")));
        }
        return archive;
    }

private:
    struct entry {
        std::string name;
        std::uint16_t method = 0;
        std::uint32_t crc = 0;
        std::uint64_t compressed = 0, uncompressed = 0, offset = 0;
    };

    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw focal::error(concat("read_npz: ", quoted(file_), " ", parts...));
    }

    void locate_central_directory() {
        const std::uint64_t size = bytes_.size();
        // The end-of-central-directory record is the last 22 bytes plus a comment of up to 64 KiB;
        // take the last signature whose comment length reaches exactly the end of the file.
        std::optional<std::uint64_t> eocd;
        if (size >= eocd_size) {
            const std::uint64_t lowest = size - eocd_size > 0xffff ? size - eocd_size - 0xffff : 0;
            for (std::uint64_t p = size - eocd_size + 1; p-- > lowest;) {
                if (load<std::uint32_t>(bytes_, p) == eocd_signature &&
                    p + eocd_size + load<std::uint16_t>(bytes_, p + 20) == size) {
                    eocd = p;
                    break;
                }
            }
        }
        if (!eocd)
            fail("is not a zip archive (no end-of-central-directory record in its ", size,
                 " bytes; truncated or not an npz file)");
        const std::uint64_t e = *eocd;
        std::uint64_t disk = load<std::uint16_t>(bytes_, e + 4), cd_disk = load<std::uint16_t>(bytes_, e + 6);
        std::uint64_t disk_entries = load<std::uint16_t>(bytes_, e + 8);
        entries_ = load<std::uint16_t>(bytes_, e + 10);
        cd_size_ = load<std::uint32_t>(bytes_, e + 12);
        cd_offset_ = load<std::uint32_t>(bytes_, e + 16);
        std::uint64_t cd_limit = e;  // the central directory ends before the record describing it

        // zip64: a locator right before the record points at the zip64 record with 64-bit fields.
        if (e >= zip64_locator_size &&
            load<std::uint32_t>(bytes_, e - zip64_locator_size) == zip64_locator_signature) {
            const std::uint64_t loc = e - zip64_locator_size;
            const auto record = load<std::uint64_t>(bytes_, loc + 8);
            if (load<std::uint32_t>(bytes_, loc + 4) != 0 || load<std::uint32_t>(bytes_, loc + 16) != 1)
                fail("is a multi-disk zip archive; expected a single file");
            if (!fits(record, zip64_eocd_size, loc) || load<std::uint32_t>(bytes_, record) != zip64_eocd_signature)
                fail("has a zip64 locator pointing at offset ", record,
                     ", where no zip64 end-of-central-directory record lies (truncated or corrupt)");
            disk = load<std::uint32_t>(bytes_, record + 16);
            cd_disk = load<std::uint32_t>(bytes_, record + 20);
            disk_entries = load<std::uint64_t>(bytes_, record + 24);
            entries_ = load<std::uint64_t>(bytes_, record + 32);
            cd_size_ = load<std::uint64_t>(bytes_, record + 40);
            cd_offset_ = load<std::uint64_t>(bytes_, record + 48);
            cd_limit = record;
        }
        if (disk != 0 || cd_disk != 0 || disk_entries != entries_)
            fail("is a multi-disk zip archive; expected a single file");
        if (!fits(cd_offset_, cd_size_, cd_limit))
            fail("has its central directory at offset ", cd_offset_, " with ", cd_size_,
                 " bytes, past the ", cd_limit, " bytes before its end record (truncated or corrupt)");
        if (entries_ > cd_size_ / central_header_size)
            fail("declares ", entries_, " members in a central directory of only ", cd_size_, " bytes (corrupt)");
    }

    entry central_entry(std::uint64_t& pos, std::uint64_t cd_end) const {
        if (!fits(pos, central_header_size, cd_end) || load<std::uint32_t>(bytes_, pos) != central_header_signature)
            fail("has a damaged central directory (no member header at offset ", pos, ")");
        const auto flags = load<std::uint16_t>(bytes_, pos + 8);
        entry e;
        e.method = load<std::uint16_t>(bytes_, pos + 10);
        e.crc = load<std::uint32_t>(bytes_, pos + 16);
        e.compressed = load<std::uint32_t>(bytes_, pos + 20);
        e.uncompressed = load<std::uint32_t>(bytes_, pos + 24);
        const std::uint64_t name_len = load<std::uint16_t>(bytes_, pos + 28);
        const std::uint64_t extra_len = load<std::uint16_t>(bytes_, pos + 30);
        const std::uint64_t comment_len = load<std::uint16_t>(bytes_, pos + 32);
        std::uint64_t disk = load<std::uint16_t>(bytes_, pos + 34);
        e.offset = load<std::uint32_t>(bytes_, pos + 42);
        const std::uint64_t total = central_header_size + name_len + extra_len + comment_len;
        if (!fits(pos, total, cd_end))
            fail("has a damaged central directory (member header at offset ", pos, " runs past its end)");
        e.name.assign(reinterpret_cast<const char*>(bytes_.data() + pos + central_header_size), name_len);

        // zip64 extended information: 64-bit values for exactly the fields saturated above, in
        // this order. numpy (force_zip64) puts it in local headers; big archives need it here.
        std::uint64_t x = pos + central_header_size + name_len;
        const std::uint64_t x_end = x + extra_len;
        while (x_end - x >= 4) {
            const auto id = load<std::uint16_t>(bytes_, x);
            const std::uint64_t len = load<std::uint16_t>(bytes_, x + 2);
            if (len > x_end - x - 4) fail("member '", e.name, "' has a truncated extra field");
            if (id == 0x0001) {
                std::uint64_t p = x + 4;
                const std::uint64_t end = p + len;
                auto take = [&](std::uint64_t& field, std::uint64_t saturated, std::size_t width) {
                    if (field != saturated) return;
                    if (end - p < width) fail("member '", e.name, "' has a truncated zip64 extra field");
                    field = width == 8 ? load<std::uint64_t>(bytes_, p) : load<std::uint32_t>(bytes_, p);
                    p += width;
                };
                take(e.uncompressed, 0xffffffff, 8);
                take(e.compressed, 0xffffffff, 8);
                take(e.offset, 0xffffffff, 8);
                take(disk, 0xffff, 4);
            }
            x += 4 + len;
        }
        pos += total;

        if (flags & 0x41) fail("member '", e.name, "' is encrypted; expected a plain npz archive");
        if (disk != 0) fail("member '", e.name, "' lies on disk ", disk, "; expected a single-file archive");
        if (e.method != 0 && e.method != 8)
            fail("member '", e.name, "' uses compression method ", e.method,
                 "; expected 0 (stored, np.savez) or 8 (deflate, np.savez_compressed)");
        if (e.name.size() < 4 || e.name.compare(e.name.size() - 4, 4, ".npy") != 0)
            fail("member '", e.name, "' is not a .npy array (its name must end in '.npy')");
        return e;
    }

    // The member's stored bytes, after checking its local header; data descriptors (flag bit 3)
    // need no handling because sizes and CRC come from the central directory.
    bytes_view member_bytes(const entry& e, std::vector<std::pair<std::uint64_t, std::uint64_t>>& extents) const {
        if (!fits(e.offset, local_header_size, cd_offset_) ||
            load<std::uint32_t>(bytes_, e.offset) != local_header_signature)
            fail("member '", e.name, "' points at offset ", e.offset,
                 ", where no local header lies (truncated or corrupt)");
        const std::uint64_t name_len = load<std::uint16_t>(bytes_, e.offset + 26);
        const std::uint64_t extra_len = load<std::uint16_t>(bytes_, e.offset + 28);
        const std::uint64_t data = e.offset + local_header_size + name_len + extra_len;
        if (!fits(e.offset + local_header_size, name_len, cd_offset_) ||
            std::string_view(reinterpret_cast<const char*>(bytes_.data() + e.offset + local_header_size), name_len) !=
                e.name)
            fail("member '", e.name, "' has a local header with another name (corrupt)");
        if (!fits(data, e.compressed, cd_offset_))
            fail("member '", e.name, "' has ", e.compressed, " bytes at offset ", data,
                 ", past the central directory at ", cd_offset_, " (truncated or corrupt)");
        if (e.method == 0 && e.compressed != e.uncompressed)
            fail("member '", e.name, "' is stored with ", e.compressed, " bytes but declares ", e.uncompressed,
                 " uncompressed (corrupt)");
        // Members must not overlap: otherwise many entries could share one big member and
        // multiply the memory a small file costs.
        const std::pair<std::uint64_t, std::uint64_t> extent{e.offset, data + e.compressed};
        auto next = std::lower_bound(extents.begin(), extents.end(), extent);
        if ((next != extents.end() && next->first < extent.second) ||
            (next != extents.begin() && std::prev(next)->second > extent.first))
            fail("member '", e.name, "' overlaps another member (corrupt)");
        extents.insert(next, extent);
        return bytes_.subspan(data, e.compressed);
    }

    std::vector<std::uint8_t> inflate_member(const entry& e, bytes_view in) const {
        if (e.uncompressed > in.size() * max_deflate_ratio + 1024)
            fail("member '", e.name, "' declares ", e.uncompressed, " bytes from ", in.size(),
                 " deflated, more than deflate can produce (corrupt)");
        std::vector<std::uint8_t> out(e.uncompressed);
        z_stream zs{};
        if (inflateInit2(&zs, -15) != Z_OK) fail("member '", e.name, "': zlib failed to initialise");
        struct end_guard {
            z_stream* z;
            ~end_guard() { inflateEnd(z); }
        } guard{&zs};
        std::uint8_t dummy = 0;  // zlib rejects a null output pointer, even for 0 bytes
        zs.next_out = out.empty() ? &dummy : out.data();
        constexpr std::size_t chunk = std::size_t{1} << 30;  // avail_in/out are 32-bit
        std::size_t in_given = 0, out_given = 0;
        for (;;) {
            if (zs.avail_in == 0 && in_given < in.size()) {
                zs.next_in = const_cast<Bytef*>(in.data() + in_given);
                zs.avail_in = static_cast<uInt>(std::min(chunk, in.size() - in_given));
                in_given += zs.avail_in;
            }
            if (zs.avail_out == 0 && out_given < out.size()) {
                zs.next_out = out.data() + out_given;
                zs.avail_out = static_cast<uInt>(std::min(chunk, out.size() - out_given));
                out_given += zs.avail_out;
            }
            const int rc = inflate(&zs, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) break;
            if (rc == Z_BUF_ERROR) {  // no progress possible: one side ran out
                if (zs.avail_out == 0 && out_given == out.size())
                    fail("member '", e.name, "' inflates to more than the ", out.size(),
                         " bytes its central directory declares (corrupt)");
                fail("member '", e.name, "' has a truncated deflate stream");
            }
            if (rc != Z_OK)
                fail("member '", e.name, "' has a corrupt deflate stream (zlib: ", zs.msg ? zs.msg : "error", ")");
        }
        const std::size_t produced = out_given - zs.avail_out, consumed = in_given - zs.avail_in;
        if (produced != out.size())
            fail("member '", e.name, "' inflates to ", produced, " bytes, its central directory declares ",
                 out.size(), " (corrupt)");
        if (consumed != in.size())
            fail("member '", e.name, "' has ", in.size() - consumed, " bytes after its deflate stream (corrupt)");
        return out;
    }

    npz_array parse_npy(bytes_view bytes, const std::string& what) const;

    const fs::path& file_;
    bytes_view bytes_;
    std::uint64_t entries_ = 0, cd_size_ = 0, cd_offset_ = 0;
};

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

npz_array archive_reader::parse_npy(bytes_view bytes, const std::string& what) const {
    auto npy_fail = [&](const std::string& message) { fail(what, " ", message); };  // always throws
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
    const auto header = npy_header_parser(text, concat("read_npz: ", quoted(file_), " ", what)).parse();

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

std::vector<std::uint8_t> read_whole_file(const fs::path& file) {
    std::error_code ec;
    const auto status = fs::status(file, ec);
    if (!fs::exists(status)) throw focal::error(concat("read_npz: ", quoted(file), " does not exist"));
    if (!fs::is_regular_file(status))
        throw focal::error(concat("read_npz: ", quoted(file), " is not a regular file"));
    const auto size = fs::file_size(file, ec);
    std::ifstream in(file, std::ios::binary);
    if (ec || !in) throw focal::error(concat("read_npz: ", quoted(file), " cannot be opened"));
    std::vector<std::uint8_t> bytes(size);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    if (static_cast<std::uintmax_t>(in.gcount()) != size)
        throw focal::error(concat("read_npz: ", quoted(file), " could not be read (got ", in.gcount(), " of ",
                                  size, " bytes)"));
    return bytes;
}

// ---------------------------------------------------------------------------------------------
// Writing

template <class T>
void append(std::string& out, T v) {
    char b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    out.append(b, sizeof v);
}

std::string_view descr_of(dtype type) {
    switch (type) {
        case dtype::float32: return "<f4";
        case dtype::float64: return "<f8";
        case dtype::int64: return "<i8";
    }
    return "";
}

// Byte for byte what numpy 1.24's np.save writes for version 1.0: the dict, spaces, '\n', the
// whole preamble a multiple of 64 bytes.
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

struct pending_member {
    std::string name;  // with ".npy"
    std::string header;
    const void* data;
    std::size_t data_bytes;
    std::uint32_t crc;
    std::uint32_t offset;
};

// Closes and removes the temporary file unless released: every failure leaves no trace.
class temp_file {
public:
    temp_file(const fs::path& path, const fs::path& target) : path_(path), target_(target) {
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd_ < 0) fail("cannot create ", quoted(path_), ": ", std::strerror(errno));
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) {
            std::error_code ec;
            fs::remove(path_, ec);
        }
    }

    void write(const void* data, std::size_t size) {
        auto p = static_cast<const char*>(data);
        while (size > 0) {
            const ssize_t n = ::write(fd_, p, std::min<std::size_t>(size, std::size_t{1} << 30));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("cannot write ", quoted(path_), ": ", std::strerror(errno));
            p += n;
            size -= static_cast<std::size_t>(n);
        }
    }

    void commit() {
        if (::fsync(fd_) != 0) fail("cannot flush ", quoted(path_), " to disk: ", std::strerror(errno));
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) fail("cannot close ", quoted(path_), ": ", std::strerror(errno));
        std::error_code ec;
        fs::rename(path_, target_, ec);
        if (ec) fail("cannot rename ", quoted(path_), " to ", quoted(target_), ": ", ec.message());
        committed_ = true;
        // Make the rename itself durable; failing here loses nothing already written.
        const fs::path dir = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
        if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }

private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const {
        throw focal::error(concat("write_npz: ", quoted(target_), ": ", parts...));
    }

    fs::path path_, target_;
    int fd_ = -1;
    bool committed_ = false;
};

}  // namespace

std::string_view dtype_name(dtype type) {
    switch (type) {
        case dtype::float32: return "float32";
        case dtype::float64: return "float64";
        case dtype::int64: return "int64";
    }
    return "unknown";
}

std::size_t element_count(const std::vector<std::size_t>& shape) {
    const auto n = checked_count(shape);
    if (!n)
        focal::detail::fail("element_count", "shape", "a shape whose element count fits size_t",
                            shape_string(shape));
    return *n;
}

std::size_t npz_array::size() const {
    return std::visit([](const auto& v) { return v.size(); }, values);
}

namespace {
template <class T, class Variant>
auto& checked_get(Variant& values, dtype want, std::string_view name) {
    if (auto* v = std::get_if<std::vector<T>>(&values)) return *v;
    focal::detail::fail("npz_array", concat("'", name, "'"), concat(dtype_name(want), " values"),
                        dtype_name(static_cast<dtype>(values.index())));
}
}  // namespace

const std::vector<float>& npz_array::as_float32(std::string_view name) const {
    return checked_get<float>(values, dtype::float32, name);
}
const std::vector<double>& npz_array::as_float64(std::string_view name) const {
    return checked_get<double>(values, dtype::float64, name);
}
const std::vector<std::int64_t>& npz_array::as_int64(std::string_view name) const {
    return checked_get<std::int64_t>(values, dtype::int64, name);
}
std::vector<float>& npz_array::as_float32(std::string_view name) {
    return checked_get<float>(values, dtype::float32, name);
}
std::vector<double>& npz_array::as_float64(std::string_view name) {
    return checked_get<double>(values, dtype::float64, name);
}
std::vector<std::int64_t>& npz_array::as_int64(std::string_view name) {
    return checked_get<std::int64_t>(values, dtype::int64, name);
}

npz_archive read_npz(const std::filesystem::path& file) {
    const std::vector<std::uint8_t> bytes = read_whole_file(file);
    return archive_reader(file, bytes).read();
}

void write_npz(const std::filesystem::path& file, const npz_archive& archive) {
    auto fail = [&](const auto&... parts) {
        throw focal::error(concat("write_npz: ", quoted(file), ": ", parts...));
    };
    // Everything is checked and laid out before the disk is touched.
    constexpr std::uint64_t zip32_limit = 0xffffffff;
    if (archive.size() > 0xffff) fail("has ", archive.size(), " arrays; a zip without zip64 holds at most 65535");
    std::vector<pending_member> members;
    std::uint64_t offset = 0, cd_size = 0;
    for (const auto& [key, array] : archive) {
        if (key.empty()) fail("has an array with an empty name");
        if (key.size() + 4 > 0xffff) fail("has an array name of ", key.size(), " bytes; expected at most 65531");
        const auto count = checked_count(array.shape);
        if (!count || *count != array.size())
            fail("array '", key, "' has shape ", shape_string(array.shape), " (",
                 count ? std::to_string(*count) : std::string("overflowing"), " elements) but holds ", array.size(),
                 " values");
        pending_member m;
        m.name = key + ".npy";
        m.header = npy_header(array);
        if (m.header.size() > 0xffff) fail("array '", key, "' has too many dimensions for a .npy 1.0 header");
        m.data = std::visit([](const auto& v) -> const void* { return v.data(); }, array.values);
        m.data_bytes = std::visit([](const auto& v) { return v.size() * sizeof(v[0]); }, array.values);
        m.crc = crc32_of(crc32_of(0, m.header.data(), m.header.size()), m.data, m.data_bytes);
        if (offset > zip32_limit || m.header.size() + m.data_bytes > zip32_limit)
            fail("is larger than 4 GiB; this writer makes zip archives without zip64");
        m.offset = static_cast<std::uint32_t>(offset);
        offset += local_header_size + m.name.size() + m.header.size() + m.data_bytes;
        cd_size += central_header_size + m.name.size();
        members.push_back(std::move(m));
    }
    if (offset > zip32_limit || cd_size > zip32_limit)
        fail("is larger than 4 GiB; this writer makes zip archives without zip64");

    const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) fail("directory ", quoted(dir), " does not exist");
    if (file.filename().empty()) fail("expected a file name, got a directory path");

    // Fixed DOS time (1980-01-01 00:00) so that equal archives are equal files.
    constexpr std::uint16_t dos_time = 0, dos_date = (0 << 9) | (1 << 5) | 1;
    fs::path temp_path = file;
    temp_path += concat(".tmp-", ::getpid());
    temp_file out(temp_path, file);
    std::string central;
    for (const auto& m : members) {
        const auto size = static_cast<std::uint32_t>(m.header.size() + m.data_bytes);
        std::string local;
        append(local, local_header_signature);
        append<std::uint16_t>(local, 20);  // version needed: 2.0
        append<std::uint16_t>(local, 0);   // flags
        append<std::uint16_t>(local, 0);   // method: stored
        append(local, dos_time);
        append(local, dos_date);
        append(local, m.crc);
        append(local, size);
        append(local, size);
        append(local, static_cast<std::uint16_t>(m.name.size()));
        append<std::uint16_t>(local, 0);  // extra length
        local += m.name;
        local += m.header;
        out.write(local.data(), local.size());
        out.write(m.data, m.data_bytes);

        append(central, central_header_signature);
        append<std::uint16_t>(central, 0x0314);  // made by: Unix, 2.0
        append<std::uint16_t>(central, 20);
        append<std::uint16_t>(central, 0);
        append<std::uint16_t>(central, 0);
        append(central, dos_time);
        append(central, dos_date);
        append(central, m.crc);
        append(central, size);
        append(central, size);
        append(central, static_cast<std::uint16_t>(m.name.size()));
        append<std::uint16_t>(central, 0);                     // extra length
        append<std::uint16_t>(central, 0);                     // comment length
        append<std::uint16_t>(central, 0);                     // disk
        append<std::uint16_t>(central, 0);                     // internal attributes
        append<std::uint32_t>(central, 0100644u << 16);        // external: a regular rw-r--r-- file
        append(central, m.offset);
        central += m.name;
    }
    append(central, eocd_signature);
    append<std::uint16_t>(central, 0);
    append<std::uint16_t>(central, 0);
    append(central, static_cast<std::uint16_t>(members.size()));
    append(central, static_cast<std::uint16_t>(members.size()));
    append(central, static_cast<std::uint32_t>(cd_size));
    append(central, static_cast<std::uint32_t>(offset));
    append<std::uint16_t>(central, 0);  // comment length
    out.write(central.data(), central.size());
    out.commit();
}

}  // namespace retinanet::io

namespace retinanet::io {

std::size_t remove_stale_temporaries(const fs::path& file) {
    const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    const std::string prefix = file.filename().string() + ".tmp-";
    std::size_t removed = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        const std::string pid_text = name.substr(prefix.size());
        if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto pid = static_cast<pid_t>(std::stol(pid_text));
        // Signal 0 probes for the process: ESRCH means its writer is gone (killed mid-write).
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        removed += fs::remove(entry.path(), ec) ? 1 : 0;
    }
    return removed;
}

}  // namespace retinanet::io
