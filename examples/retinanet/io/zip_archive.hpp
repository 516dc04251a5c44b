// io/zip_archive.hpp: zip archives (PKWARE's APPNOTE), as far as npz files use them.
//
// A zip is a local header (signature 0x04034b50, 30 bytes, then name and extra field) before each
// member's bytes, then the central directory: one header per member (0x02014b50, 46 bytes, then
// name, extra field and comment) with its method, CRC-32, sizes and local header offset, closed by
// the end-of-central-directory record (0x06054b50, 22 bytes and a comment of up to 65535 bytes,
// the last thing in the file). A zip64 archive puts a locator (0x07064b50, 20 bytes) right before
// that record, pointing at a zip64 end record (0x06064b50, 56 bytes) with 64-bit fields; a size or
// offset saturated in a header (0xffffffff, a disk 0xffff) is then in its zip64 extra field (id
// 0x0001). Members are stored (method 0) or raw deflate (method 8, zlib); flag bits 0 and 6 mark
// encryption. Every field is little-endian.
//
// zip_reader checks every size and offset read from the file against the bytes actually there
// before it is used, so a hostile file can cost at most a bounded multiple of its own size in
// memory (1x for stored data, deflate's 1032:1 for compressed data). stored_zip_writer writes
// stored members without zip64 (at most 65535 members and 4 GiB), the same bytes for the same input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/little_endian.hpp"

namespace retinanet::io::detail {

// A member as its central directory header describes it, zip64 fields resolved.
struct zip_entry {
    std::string name;
    std::uint16_t method = 0;  // 0 stored, 8 deflate
    std::uint32_t crc = 0;     // CRC-32 of the uncompressed bytes
    std::uint64_t compressed = 0, uncompressed = 0, offset = 0;  // offset: of the local header
};

// Reads an archive held whole in memory, one member after another. Every failure is a
// focal::error "<context> <what is wrong>".
class zip_reader {
public:
    // Finds and checks the end records: a single-disk archive whose central directory lies before
    // them. `bytes` must outlive the reader; `context` names the file ("read_npz: '<file>'").
    zip_reader(std::string context, bytes_view bytes);

    // The number of members the central directory declares.
    std::uint64_t entries() const { return entries_; }

    // The next central directory header: focal::error when it is damaged, encrypted, on another
    // disk, or uses a method other than stored and deflate. Call entries() times.
    zip_entry next_entry();

    // The member's bytes as stored, after checking its local header and that it overlaps no member
    // read before. Data descriptors (flag bit 3) need no handling: sizes and CRC come from the
    // central directory.
    bytes_view stored_bytes(const zip_entry& e);

    // The member's contents: `stored` itself, or for a deflated member `stored` inflated into
    // `inflated`; focal::error on a corrupt deflate stream or a CRC-32 mismatch.
    bytes_view contents(const zip_entry& e, bytes_view stored, std::vector<std::uint8_t>& inflated) const;

private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const;

    void locate_central_directory();
    std::vector<std::uint8_t> inflate_member(const zip_entry& e, bytes_view in) const;

    std::string context_;
    bytes_view bytes_;
    std::uint64_t entries_ = 0, cd_size_ = 0, cd_offset_ = 0;
    std::uint64_t pos_ = 0;                                        // the next central directory header
    std::vector<std::pair<std::uint64_t, std::uint64_t>> extents_;  // members' [begin, end), sorted
};

// Lays out an archive of stored members, checking its size, then writes it: each member's local
// header and bytes, the central directory, the end record. Members are dated 1980-01-01 00:00 and
// marked as regular rw-r--r-- Unix files, so that equal archives are equal files. Every failure is
// a focal::error "<context>: <what is wrong>".
class stored_zip_writer {
public:
    // `context` names the file ("write_npz: '<file>'").
    explicit stored_zip_writer(std::string context) : context_(std::move(context)) {}

    // Adds a member whose contents are `head` followed by the `size` bytes at `data`, which must
    // stay valid until write(); focal::error when the member's offset or contents pass 4 GiB.
    // The caller keeps to 65535 members and names of up to 65535 bytes.
    void add(std::string name, std::string head, const void* data, std::size_t size);

    // focal::error when the whole archive, central directory included, passes 4 GiB.
    void check_size() const;

    // Writes the archive as a sequence of sink(data, size) calls.
    void write(const std::function<void(const void*, std::size_t)>& sink) const;

private:
    struct member {
        std::string name;
        std::string head;
        const void* data;
        std::size_t data_bytes;
        std::uint32_t crc;
        std::uint32_t offset;
    };

    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const;

    std::string context_;
    std::vector<member> members_;
    std::uint64_t offset_ = 0, cd_size_ = 0;  // the end of the last member; the central headers' size
};

}  // namespace retinanet::io::detail
