// data/image.cpp: images through stb_image (read) and stb_image_write (write); the implementations
// come from Debian's libstb.
#include "image.hpp"
#include "support/check.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <system_error>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <focal/core/error.hpp>

#include "bilinear.hpp"

namespace retinanet::data {


image make_image(int width, int height, colour fill) {
    require(width > 0 && height > 0, "retinanet::data::make_image", "width and height", "positive", width, " x ",
            height);
    image img{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
    for (std::size_t i = 0; i < img.rgb.size(); i += 3) std::memcpy(&img.rgb[i], fill.data(), 3);
    return img;
}

void check_image(const image& img, const char* where) {
    require(img.width > 0 && img.height > 0, where, "the image size", "positive", img.width, " x ", img.height);
    require(img.rgb.size() == static_cast<std::size_t>(img.width) * img.height * 3, where,
            "the image's rgb.size()", "width * height * 3 = " + std::to_string(std::size_t{3} * img.width * img.height),
            img.rgb.size());
}

namespace {

std::uint32_t big_endian_u32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// stb_image does not check PNG's per-chunk CRC-32, so a flipped byte inside the compressed pixels
// can decode to a wrong image without complaint; this walk catches it (and truncation) first.
// Layout: 8-byte signature, then chunks of length (4, big-endian), type (4), data, CRC-32 of type
// and data (4), up to IEND.
void check_png_chunks(const std::string& bytes, const std::filesystem::path& file, const char* where) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::size_t at = 8;
    while (true) {
        if (bytes.size() - at < 12) fail(where, "file", "a complete PNG", "\"", file.string(), "\", truncated at byte ", at);
        const std::uint32_t length = big_endian_u32(p + at);
        if (length > bytes.size() - at - 12)
            fail(where, "file", "a complete PNG", "\"", file.string(), "\", a chunk of ", length, " bytes at byte ", at,
                 " runs past the end");
        const auto crc = static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0), p + at + 4, length + 4));
        if (crc != big_endian_u32(p + at + 8 + length))
            fail(where, "file", "an intact PNG", "\"", file.string(), "\", whose chunk '", bytes.substr(at + 4, 4), "' at byte ",
                 at, " fails its CRC-32 (the file is corrupt)");
        const bool end = bytes.compare(at + 4, 4, "IEND") == 0;
        at += 12 + std::size_t{length};
        if (end) return;
    }
}

}  // namespace

image read_image(const std::filesystem::path& file) {
    constexpr const char* where = "retinanet::data::read_image";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) fail(where, "file", "an existing image file", "\"", file.string(), "\"");
    std::ifstream in(file, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in.good() && !in.eof()) fail(where, "file", "readable", "\"", file.string(), "\"");
    require(bytes.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()), where, "file", "smaller than 2 GiB",
            bytes.size(), " bytes");
    if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) check_png_chunks(bytes, file, where);
    int w = 0, h = 0, channels = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> data(
        stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &channels, 3),
        stbi_image_free);
    if (!data) {
        const char* reason = stbi_failure_reason();
        fail(where, "file", "a readable image (PNG, JPEG, BMP, ...)", "\"", file.string(), "\" (",
             reason ? reason : "unknown stb_image error", ")");
    }
    image img{w, h, {}};
    img.rgb.assign(data.get(), data.get() + static_cast<std::size_t>(w) * h * 3);
    return img;
}

void write_png(const std::filesystem::path& file, const image& img) {
    constexpr const char* where = "retinanet::data::write_png";
    check_image(img, where);
    if (!stbi_write_png(file.string().c_str(), img.width, img.height, 3, img.rgb.data(), img.width * 3))
        fail(where, "file", "writable", "\"", file.string(), "\" (does its folder exist?)");
}

image resize_bilinear(const image& img, int width, int height) {
    constexpr const char* where = "retinanet::data::resize_bilinear";
    check_image(img, where);
    require(width > 0 && height > 0, where, "width and height", "positive", width, " x ", height);
    if (width == img.width && height == img.height) return img;
    const auto xs = detail::bilinear_taps(img.width, width);
    const auto ys = detail::bilinear_taps(img.height, height);
    image out{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
    const std::size_t stride = static_cast<std::size_t>(img.width) * 3;
    for (int y = 0; y < height; ++y) {
        const auto& ty = ys[static_cast<std::size_t>(y)];
        const std::uint8_t* r0 = img.rgb.data() + static_cast<std::size_t>(ty.i0) * stride;
        const std::uint8_t* r1 = img.rgb.data() + static_cast<std::size_t>(ty.i1) * stride;
        std::uint8_t* dst = out.rgb.data() + static_cast<std::size_t>(y) * width * 3;
        for (int x = 0; x < width; ++x) {
            const auto& tx = xs[static_cast<std::size_t>(x)];
            const std::size_t a = static_cast<std::size_t>(tx.i0) * 3, b = static_cast<std::size_t>(tx.i1) * 3;
            for (int c = 0; c < 3; ++c) {
                const float top = r0[a + c] + tx.w1 * (r0[b + c] - r0[a + c]);
                const float bottom = r1[a + c] + tx.w1 * (r1[b + c] - r1[a + c]);
                dst[x * 3 + c] = static_cast<std::uint8_t>(top + ty.w1 * (bottom - top) + 0.5f);
            }
        }
    }
    return out;
}

}  // namespace retinanet::data
