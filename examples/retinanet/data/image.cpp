// data/image.cpp: images through stb_image (read) and stb_image_write (write); the implementations
// come from Debian's libstb.
#include "image.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <focal/core/error.hpp>

#include "bilinear.hpp"

namespace retinanet::data {

using focal::detail::fail;
using focal::detail::require;

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

image read_image(const std::filesystem::path& file) {
    constexpr const char* where = "retinanet::data::read_image";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) fail(where, "file", "an existing image file", "\"", file.string(), "\"");
    int w = 0, h = 0, channels = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load(file.string().c_str(), &w, &h, &channels, 3),
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
