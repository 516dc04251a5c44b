// data/idx_reader.cpp: idx files through zlib's gz* interface (it also reads uncompressed files).
#include "idx_reader.hpp"
#include "support/check.hpp"

#include <array>
#include <memory>
#include <string>
#include <system_error>

#include <zlib.h>

#include <focal/core/error.hpp>

namespace retinanet::data {
namespace {


struct gz_closer {
    void operator()(gzFile f) const { gzclose(f); }
};
using gz_handle = std::unique_ptr<gzFile_s, gz_closer>;

class gz_reader {
public:
    gz_reader(const std::filesystem::path& file, const char* where) : file_(file), where_(where) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(file, ec))
            fail(where_, "file", "an existing idx file (gzip)", "\"", file.string(), "\", which does not exist");
        handle_.reset(gzopen(file.string().c_str(), "rb"));
        if (!handle_) fail(where_, "file", "readable", "\"", file.string(), "\", which cannot be opened");
    }

    // Reads exactly n bytes; what names the part being read, for the message.
    void read(void* out, std::size_t n, const char* what) {
        auto* dst = static_cast<unsigned char*>(out);
        while (n > 0) {
            const unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
            const int got = gzread(handle_.get(), dst, chunk);
            if (got < 0) {
                int code = 0;
                const char* msg = gzerror(handle_.get(), &code);
                fail(where_, "file", "a valid gzip stream", "\"", file_.string(), "\" (", msg ? msg : "zlib error",
                     ") while reading ", what);
            }
            if (got == 0)
                fail(where_, "file", "complete", "\"", file_.string(), "\", truncated while reading ", what, " (",
                     n, " bytes missing)");
            dst += got;
            n -= static_cast<std::size_t>(got);
        }
    }

    // After the declared data: the stream must end here, cleanly. Reading on to the end is what
    // makes zlib check the gzip trailer (CRC-32 and length), so corrupt data is caught, not used.
    void expect_end() {
        unsigned char extra = 0;
        const int got = gzread(handle_.get(), &extra, 1);
        int code = Z_OK;
        const char* msg = gzerror(handle_.get(), &code);
        if (got < 0 || code != Z_OK)
            fail(where_, "file", "a valid gzip stream", "\"", file_.string(), "\" (", msg ? msg : "zlib error",
                 ": the file is corrupt or truncated)");
        if (got > 0) fail(where_, "file", "no data after what its header declares", "\"", file_.string(), "\" with more");
    }

    std::uint32_t read_u32(const char* what) {
        std::array<unsigned char, 4> b{};
        read(b.data(), 4, what);
        return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    }

    void expect_magic(std::uint32_t magic, const char* kind) {
        const std::uint32_t got = read_u32("the magic number");
        if (got != magic)
            fail(where_, "file", kind, "\"", file_.string(), "\" with magic number 0x", to_hex(got), " (expected 0x",
                 to_hex(magic), ")");
    }

    int read_dim(const char* what, std::uint32_t max) {
        const std::uint32_t d = read_u32(what);
        if (d == 0 || d > max)
            fail(where_, std::string("the ") + what, "in [1, " + std::to_string(max) + "]", d, " in \"",
                 file_.string(), "\"");
        return static_cast<int>(d);
    }

private:
    static std::string to_hex(std::uint32_t v) {
        static const char digits[] = "0123456789abcdef";
        std::string s(8, '0');
        for (int i = 7; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 15];
        return s;
    }

    std::filesystem::path file_;
    const char* where_;
    gz_handle handle_;
};

}  // namespace

idx_images read_idx_images(const std::filesystem::path& file) {
    gz_reader in(file, "retinanet::data::read_idx_images");
    in.expect_magic(0x00000803u, "an idx image file (uint8, 3 dimensions)");
    idx_images out;
    // Bounds keep count * rows * cols far below SIZE_MAX and the allocation plausible (< 4 GiB).
    out.count = in.read_dim("image count", 1u << 24);
    out.rows = in.read_dim("image rows", 4096);
    out.cols = in.read_dim("image columns", 4096);
    const std::size_t bytes = static_cast<std::size_t>(out.count) * out.rows * out.cols;
    if (bytes > (std::size_t{1} << 32))
        fail("retinanet::data::read_idx_images", "count * rows * cols", "at most 2^32 bytes", bytes,
             " in \"", file.string(), "\"");
    out.pixels.resize(bytes);
    in.read(out.pixels.data(), bytes, "the pixels");
    in.expect_end();
    return out;
}

idx_labels read_idx_labels(const std::filesystem::path& file) {
    gz_reader in(file, "retinanet::data::read_idx_labels");
    in.expect_magic(0x00000801u, "an idx label file (uint8, 1 dimension)");
    idx_labels out;
    out.count = in.read_dim("label count", 1u << 30);
    out.labels.resize(static_cast<std::size_t>(out.count));
    in.read(out.labels.data(), out.labels.size(), "the labels");
    in.expect_end();
    return out;
}

}  // namespace retinanet::data
