// io/zip_archive.cpp: the zip reader and writer (the format facts are in zip_archive.hpp). CRC-32
// and inflation are zlib's.
#include "io/zip_archive.hpp"

#include <algorithm>
#include <iterator>
#include <optional>
#include <string_view>

#include <zlib.h>

#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::io::detail {
namespace {

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
// Offsets and sizes of a zip without zip64.
constexpr std::uint64_t zip32_limit = 0xffffffff;

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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reading

template <class... Parts>
[[noreturn]] void zip_reader::fail(const Parts&... parts) const {
    throw focal::error(concat(context_, " ", parts...));
}

zip_reader::zip_reader(std::string context, bytes_view bytes) : context_(std::move(context)), bytes_(bytes) {
    locate_central_directory();
    pos_ = cd_offset_;
}

void zip_reader::locate_central_directory() {
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

zip_entry zip_reader::next_entry() {
    std::uint64_t& pos = pos_;
    const std::uint64_t cd_end = cd_offset_ + cd_size_;
    if (!fits(pos, central_header_size, cd_end) || load<std::uint32_t>(bytes_, pos) != central_header_signature)
        fail("has a damaged central directory (no member header at offset ", pos, ")");
    const auto flags = load<std::uint16_t>(bytes_, pos + 8);
    zip_entry e;
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
    return e;
}

bytes_view zip_reader::stored_bytes(const zip_entry& e) {
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
    auto next = std::lower_bound(extents_.begin(), extents_.end(), extent);
    if ((next != extents_.end() && next->first < extent.second) ||
        (next != extents_.begin() && std::prev(next)->second > extent.first))
        fail("member '", e.name, "' overlaps another member (corrupt)");
    extents_.insert(next, extent);
    return bytes_.subspan(data, e.compressed);
}

bytes_view zip_reader::contents(const zip_entry& e, bytes_view stored, std::vector<std::uint8_t>& inflated) const {
    bytes_view member = stored;
    if (e.method == 8) {
        inflated = inflate_member(e, member);
        member = inflated;
    }
    const std::uint32_t crc = crc32_of(0, member.data(), member.size());
    if (crc != e.crc)
        fail("member '", e.name, "' has CRC-32 ", hex32(crc), ", the central directory records ", hex32(e.crc),
             " (the file is corrupt)");
    return member;
}

std::vector<std::uint8_t> zip_reader::inflate_member(const zip_entry& e, bytes_view in) const {
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
        fail("member '", e.name, "' inflates to ", produced, " bytes, its central directory declares ", out.size(),
             " (corrupt)");
    if (consumed != in.size())
        fail("member '", e.name, "' has ", in.size() - consumed, " bytes after its deflate stream (corrupt)");
    return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

template <class... Parts>
[[noreturn]] void stored_zip_writer::fail(const Parts&... parts) const {
    throw focal::error(concat(context_, ": ", parts...));
}

void stored_zip_writer::add(std::string name, std::string head, const void* data, std::size_t size) {
    member m{std::move(name), std::move(head), data, size, 0, 0};
    m.crc = crc32_of(crc32_of(0, m.head.data(), m.head.size()), m.data, m.data_bytes);
    if (offset_ > zip32_limit || m.head.size() + m.data_bytes > zip32_limit)
        fail("is larger than 4 GiB; this writer makes zip archives without zip64");
    m.offset = static_cast<std::uint32_t>(offset_);
    offset_ += local_header_size + m.name.size() + m.head.size() + m.data_bytes;
    cd_size_ += central_header_size + m.name.size();
    members_.push_back(std::move(m));
}

void stored_zip_writer::check_size() const {
    if (offset_ > zip32_limit || cd_size_ > zip32_limit)
        fail("is larger than 4 GiB; this writer makes zip archives without zip64");
}

void stored_zip_writer::write(const std::function<void(const void*, std::size_t)>& sink) const {
    // Fixed DOS time (1980-01-01 00:00) so that equal archives are equal files.
    constexpr std::uint16_t dos_time = 0, dos_date = (0 << 9) | (1 << 5) | 1;
    std::string central;
    for (const auto& m : members_) {
        const auto size = static_cast<std::uint32_t>(m.head.size() + m.data_bytes);
        // The fields the local and the central header share, from "version needed" to the name length.
        const auto shared_fields = [&](std::string& out) {
            append<std::uint16_t>(out, 20);  // version needed: 2.0
            append<std::uint16_t>(out, 0);   // flags
            append<std::uint16_t>(out, 0);   // method: stored
            append(out, dos_time);
            append(out, dos_date);
            append(out, m.crc);
            append(out, size);  // compressed
            append(out, size);  // uncompressed
            append(out, static_cast<std::uint16_t>(m.name.size()));
        };
        std::string local;
        append(local, local_header_signature);
        shared_fields(local);
        append<std::uint16_t>(local, 0);  // extra length
        local += m.name;
        local += m.head;
        sink(local.data(), local.size());
        sink(m.data, m.data_bytes);

        append(central, central_header_signature);
        append<std::uint16_t>(central, 0x0314);  // made by: Unix, 2.0
        shared_fields(central);
        append<std::uint16_t>(central, 0);               // extra length
        append<std::uint16_t>(central, 0);               // comment length
        append<std::uint16_t>(central, 0);               // disk
        append<std::uint16_t>(central, 0);               // internal attributes
        append<std::uint32_t>(central, 0100644u << 16);  // external: a regular rw-r--r-- file
        append(central, m.offset);
        central += m.name;
    }
    append(central, eocd_signature);
    append<std::uint16_t>(central, 0);
    append<std::uint16_t>(central, 0);
    append(central, static_cast<std::uint16_t>(members_.size()));
    append(central, static_cast<std::uint16_t>(members_.size()));
    append(central, static_cast<std::uint32_t>(cd_size_));
    append(central, static_cast<std::uint32_t>(offset_));
    append<std::uint16_t>(central, 0);  // comment length
    sink(central.data(), central.size());
}

}  // namespace retinanet::io::detail
