// data/fmnist_det.cpp: the FMNIST-Det generator. The order of the random draws is part of the
// dataset's definition (changing it changes every image): background colours, gradient direction,
// noise (row by row, 5 values per 64-bit draw), lines, object count, then per object its item,
// side, tint and placements.
#include "fmnist_det.hpp"
#include "support/check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include <focal/core/error.hpp>

#include "bilinear.hpp"
#include "random.hpp"

namespace retinanet::data {


namespace {

// Streams of seed_for(): the two splits never share an image seed.
constexpr std::uint64_t train_stream = 0x747261696e;  // "train"
constexpr std::uint64_t test_stream = 0x74657374;     // "test"

float iou(const box& a, const box& b) {
    const float iw = std::min(a[2], b[2]) - std::max(a[0], b[0]);
    const float ih = std::min(a[3], b[3]) - std::max(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    const float inter = iw * ih;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

std::uint8_t to_u8(float v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0f, 255.0f) + 0.5f); }

// Gradient from c0 to c1 along a random unit direction (drawn by rejection in the unit disc: no
// trigonometry, so no libm dependence), plus N(0, sigma^2) noise per channel.
void render_background(image& img, random& rng, float sigma) {
    float c0[3], c1[3];
    for (float& c : c0) c = static_cast<float>(rng.uniform_int(0, 255));
    for (float& c : c1) c = static_cast<float>(rng.uniform_int(0, 255));
    double u = 0, v = 0, r2 = 0;
    do {
        u = rng.uniform(-1, 1);
        v = rng.uniform(-1, 1);
        r2 = u * u + v * v;
    } while (r2 > 1 || r2 < 1e-4);
    const double norm = std::sqrt(r2);
    u /= norm;
    v /= norm;
    // t = 0.5 + projection of the pixel centre on (u, v) / the image's extent along (u, v): t spans [0, 1].
    const double extent = std::abs(u) * img.width + std::abs(v) * img.height;
    const float dtx = static_cast<float>(u / extent), dty = static_cast<float>(v / extent);
    const float t00 = static_cast<float>(0.5 + ((0.5 - img.width / 2.0) * u + (0.5 - img.height / 2.0) * v) / extent);
    const float dc[3] = {c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2]};

    const auto& levels = detail::normal_levels();
    const std::size_t row_values = static_cast<std::size_t>(img.width) * 3;
    std::vector<float> noise(row_values, 0.0f);
    for (int y = 0; y < img.height; ++y) {
        if (sigma > 0) {
            // 5 levels of 12 bits from each 64-bit draw.
            for (std::size_t i = 0; i < row_values;) {
                std::uint64_t bits = rng.bits();
                for (int k = 0; k < 5 && i < row_values; ++k, ++i, bits >>= 12) noise[i] = sigma * levels[bits & 4095];
            }
        }
        std::uint8_t* dst = img.rgb.data() + static_cast<std::size_t>(y) * row_values;
        const float t_row = t00 + static_cast<float>(y) * dty;
        for (int x = 0; x < img.width; ++x) {
            const float t = t_row + static_cast<float>(x) * dtx;
            for (int c = 0; c < 3; ++c) {
                const std::size_t i = static_cast<std::size_t>(x) * 3 + static_cast<std::size_t>(c);
                dst[i] = to_u8(c0[c] + t * dc[c] + noise[i]);
            }
        }
    }
}

// A segment between two random points, 1 or 2 px wide, in a random colour.
void render_line(image& img, random& rng) {
    const double x0 = rng.uniform(0, img.width), y0 = rng.uniform(0, img.height);
    const double x1 = rng.uniform(0, img.width), y1 = rng.uniform(0, img.height);
    const int width = rng.uniform_int(1, 2);
    std::uint8_t col[3];
    for (auto& c : col) c = static_cast<std::uint8_t>(rng.uniform_int(0, 255));
    const int steps = static_cast<int>(std::ceil(std::max(std::abs(x1 - x0), std::abs(y1 - y0)))) + 1;
    for (int k = 0; k <= steps; ++k) {
        const double f = static_cast<double>(k) / steps;
        // A width x width block centred on the point.
        const int bx = static_cast<int>(std::floor(x0 + f * (x1 - x0) - (width - 1) * 0.5));
        const int by = static_cast<int>(std::floor(y0 + f * (y1 - y0) - (width - 1) * 0.5));
        for (int y = std::max(by, 0); y < std::min(by + width, img.height); ++y)
            for (int x = std::max(bx, 0); x < std::min(bx + width, img.width); ++x)
                std::copy(col, col + 3, img.rgb.begin() + (static_cast<std::ptrdiff_t>(y) * img.width + x) * 3);
    }
}

// The item scaled to side x side, as alpha = pixel / 255.
void scale_item(const std::uint8_t* item, int rows, int cols, int side, std::vector<float>& alpha) {
    const auto xs = detail::bilinear_taps(cols, side);
    const auto ys = detail::bilinear_taps(rows, side);
    alpha.resize(static_cast<std::size_t>(side) * side);
    for (int y = 0; y < side; ++y) {
        const auto& ty = ys[static_cast<std::size_t>(y)];
        const std::uint8_t* r0 = item + static_cast<std::ptrdiff_t>(ty.i0) * cols;
        const std::uint8_t* r1 = item + static_cast<std::ptrdiff_t>(ty.i1) * cols;
        for (int x = 0; x < side; ++x) {
            const auto& tx = xs[static_cast<std::size_t>(x)];
            const float top = r0[tx.i0] + tx.w1 * static_cast<float>(r0[tx.i1] - r0[tx.i0]);
            const float bottom = r1[tx.i0] + tx.w1 * static_cast<float>(r1[tx.i1] - r1[tx.i0]);
            alpha[static_cast<std::size_t>(y) * side + x] = (top + ty.w1 * (bottom - top)) / 255.0f;
        }
    }
}

std::shared_ptr<const fashion_mnist_split> checked_items(std::shared_ptr<const fashion_mnist_split> items,
                                                         const char* where) {
    require(items != nullptr, where, "items", "a loaded Fashion-MNIST split", "nullptr");
    require(items->images.count > 0 && items->images.count == items->labels.count, where, "items",
            "as many images as labels (> 0)", items->images.count, " images and ", items->labels.count, " labels");
    const auto classes = fashion_mnist_class_names().size();
    const auto& labels = items->labels.labels;
    const auto bad = std::find_if(labels.begin(), labels.end(), [&](std::uint8_t l) { return l >= classes; });
    if (bad != labels.end())
        fail(where, "every item label", "in [0, " + std::to_string(classes - 1) + "]", static_cast<int>(*bad),
             " at index ", bad - labels.begin());
    return items;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
    static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

std::filesystem::path default_fashion_mnist_dir() {
    if (const char* env = std::getenv("FOCAL_FASHION_MNIST"); env && *env) return env;
    return "/usr/share/datasets/fashion-mnist";
}

std::shared_ptr<const fashion_mnist_split> load_fashion_mnist(std::string_view split,
                                                              const std::filesystem::path& dir) {
    constexpr const char* where = "retinanet::data::load_fashion_mnist";
    require(split == "train" || split == "t10k", where, "split", "\"train\" or \"t10k\"", "\"", split, "\"");
    const std::filesystem::path folder = dir.empty() ? default_fashion_mnist_dir() : dir;
    const std::filesystem::path images = folder / (std::string(split) + "-images-idx3-ubyte.gz");
    const std::filesystem::path labels = folder / (std::string(split) + "-labels-idx1-ubyte.gz");

    static std::mutex mutex;
    static std::map<std::string, std::weak_ptr<const fashion_mnist_split>> cache;
    const std::lock_guard lock(mutex);  // also makes concurrent first loads read the files once
    auto& slot = cache[images.lexically_normal().string()];
    if (auto loaded = slot.lock()) return loaded;

    auto loaded = std::make_shared<fashion_mnist_split>();
    loaded->images = read_idx_images(images);
    loaded->labels = read_idx_labels(labels);
    if (loaded->images.count != loaded->labels.count)
        fail(where, "the label count", "the image count " + std::to_string(loaded->images.count), loaded->labels.count,
             " (\"", labels.string(), "\")");
    const auto classes = fashion_mnist_class_names().size();
    for (std::size_t i = 0; i < loaded->labels.labels.size(); ++i)
        if (loaded->labels.labels[i] >= classes)
            fail(where, "every label", "in [0, " + std::to_string(classes - 1) + "]",
                 static_cast<int>(loaded->labels.labels[i]), " at index ", i, " of \"", labels.string(), "\"");
    slot = loaded;
    return loaded;
}

void check_options(const fmnist_det_options& o) {
    constexpr const char* where = "retinanet::data::fmnist_det_options";
    require(o.image_size >= 8 && o.image_size <= 8192, where, "image_size", "in [8, 8192]", o.image_size);
    require(o.min_objects >= 0 && o.min_objects <= o.max_objects && o.max_objects <= 1000, where,
            "min_objects, max_objects", "0 <= min_objects <= max_objects <= 1000", o.min_objects, ", ", o.max_objects);
    require(o.min_side >= 1 && o.min_side <= o.max_side && o.max_side <= static_cast<float>(o.image_size), where,
            "min_side, max_side", "1 <= min_side <= max_side <= image_size", o.min_side, ", ", o.max_side);
    require(o.max_iou >= 0 && o.max_iou <= 1, where, "max_iou", "in [0, 1]", o.max_iou);
    require(o.placement_tries >= 1, where, "placement_tries", ">= 1", o.placement_tries);
    require(o.noise_sigma >= 0 && o.noise_sigma <= 255, where, "noise_sigma", "in [0, 255]", o.noise_sigma);
    require(o.max_lines >= 0 && o.max_lines <= 1000, where, "max_lines", "in [0, 1000]", o.max_lines);
    require(o.alpha_threshold >= 0 && o.alpha_threshold < 1, where, "alpha_threshold", "in [0, 1)", o.alpha_threshold);
}

sample render_fmnist_det(const fashion_mnist_split& items, const fmnist_det_options& o, std::uint64_t image_seed) {
    random rng(image_seed);
    sample s;
    s.picture = image{o.image_size, o.image_size,
                      std::vector<std::uint8_t>(static_cast<std::size_t>(o.image_size) * o.image_size * 3)};
    image& img = s.picture;
    render_background(img, rng, o.noise_sigma);
    const int lines = rng.uniform_int(0, o.max_lines);
    for (int i = 0; i < lines; ++i) render_line(img, rng);

    const int objects = rng.uniform_int(o.min_objects, o.max_objects);
    s.boxes.reserve(static_cast<std::size_t>(objects));
    std::vector<float> alpha;
    const auto& src = items.images;
    for (int n = 0; n < objects; ++n) {
        const int item = rng.uniform_int(0, src.count - 1);
        const int side = std::clamp(static_cast<int>(std::lround(rng.log_uniform(o.min_side, o.max_side))), 1,
                                    o.image_size);
        float tint[3];
        for (float& c : tint) c = static_cast<float>(rng.uniform_int(128, 255));
        scale_item(src.image(item), src.rows, src.cols, side, alpha);

        // Tight box inside the side x side square.
        int bx0 = side, by0 = side, bx1 = -1, by1 = -1;
        for (int y = 0; y < side; ++y)
            for (int x = 0; x < side; ++x)
                if (alpha[static_cast<std::size_t>(y) * side + x] > o.alpha_threshold) {
                    bx0 = std::min(bx0, x);
                    bx1 = std::max(bx1, x);
                    by0 = std::min(by0, y);
                    by1 = std::max(by1, y);
                }
        // An item with no pixel above the threshold (a blank one) has nothing to detect: skip it
        // (its placement draws are skipped too).
        if (bx1 < 0) continue;

        bool placed = false;
        int left = 0, top = 0;
        box b{};
        for (int t = 0; t < o.placement_tries && !placed; ++t) {
            left = rng.uniform_int(0, o.image_size - side);
            top = rng.uniform_int(0, o.image_size - side);
            b = {static_cast<float>(left + bx0), static_cast<float>(top + by0), static_cast<float>(left + bx1 + 1),
                 static_cast<float>(top + by1 + 1)};
            placed = std::none_of(s.boxes.begin(), s.boxes.end(), [&](const box& p) { return iou(p, b) > o.max_iou; });
        }
        if (!placed) continue;

        // out = background + alpha * (tint - background), over the box (alpha <= threshold outside
        // it may still be > 0: the whole square is composited).
        for (int y = 0; y < side; ++y) {
            std::uint8_t* dst = img.rgb.data() + (static_cast<std::size_t>(top + y) * img.width + left) * 3;
            const float* a = alpha.data() + static_cast<std::size_t>(y) * side;
            for (int x = 0; x < side; ++x) {
                if (a[x] <= 0) continue;
                for (int c = 0; c < 3; ++c) {
                    const float bg = dst[x * 3 + c];
                    dst[x * 3 + c] = static_cast<std::uint8_t>(bg + a[x] * (tint[c] - bg) + 0.5f);
                }
            }
        }
        s.boxes.push_back(b);
        s.labels.push_back(items.labels.labels[static_cast<std::size_t>(item)]);
        s.crowd.push_back(0);
    }
    return s;
}

fmnist_det_train::fmnist_det_train(fmnist_det_options options)
    : fmnist_det_train(load_fashion_mnist("train", options.fashion_mnist_dir), options) {}

fmnist_det_train::fmnist_det_train(std::shared_ptr<const fashion_mnist_split> items, fmnist_det_options options)
    : items_(checked_items(std::move(items), "retinanet::data::fmnist_det_train")), options_(std::move(options)) {
    check_options(options_);
}

sample fmnist_det_train::get(std::size_t index) const {
    require(index < endless, "retinanet::data::fmnist_det_train::get", "index", "below 2^48", index);
    sample s = render_fmnist_det(*items_, options_, seed_for(options_.seed, train_stream, index));
    s.image_id = static_cast<std::int64_t>(index) + 1;
    return s;
}

fmnist_det_test::fmnist_det_test(fmnist_det_options options, std::size_t count)
    : fmnist_det_test(load_fashion_mnist("t10k", options.fashion_mnist_dir), options, count) {}

fmnist_det_test::fmnist_det_test(std::shared_ptr<const fashion_mnist_split> items, fmnist_det_options options,
                                 std::size_t count)
    : items_(checked_items(std::move(items), "retinanet::data::fmnist_det_test")),
      options_(std::move(options)),
      count_(count) {
    check_options(options_);
    require(count > 0 && count <= fmnist_det_train::endless, "retinanet::data::fmnist_det_test", "count",
            "in [1, 2^48]", count);
}

sample fmnist_det_test::get(std::size_t index) const {
    require(index < count_, "retinanet::data::fmnist_det_test::get", "index", "below size() = " + std::to_string(count_),
            index);
    sample s = render_fmnist_det(*items_, options_, seed_for(options_.seed, test_stream, index));
    s.image_id = static_cast<std::int64_t>(index) + 1;
    return s;
}

}  // namespace retinanet::data
