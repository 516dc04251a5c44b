// data/fmnist_det.hpp: FMNIST-Det, the bundled detection dataset (spec v1).
//
// A 128 x 128 RGB canvas: a linear gradient between two random colours along a random direction,
// Gaussian noise (sigma 8), 0-3 thin random lines; then 1-6 Fashion-MNIST items, each resized
// bilinearly to a side s drawn log-uniformly in [12, 96], tinted with a random colour (channels in
// [128, 255]) and alpha-composited with alpha = pixel / 255, placed uniformly inside the canvas and
// re-placed (up to 50 tries, then dropped) while its box has IoU > 0.3 with a box already placed.
// Box: the tight box of the item's pixels with alpha > 0.1, x2 = last column + 1. Label: the
// Fashion-MNIST class. Boxes are listed in drawing order (a later item may cover part of an
// earlier one).
//
// Determinism: image i is a pure function of (options, seed, split, i): the train split is an
// endless stream made index-addressable, the test split a fixed set of `count` images. All draws
// come from random.hpp (the standard's fixed mt19937_64 with our own distributions), and the
// library is built with -ffp-contract=off, so the same seed gives the same bytes on every machine
// whose libm agrees on exp/log to the last bit at the few places they are used (sides are rounded
// to integers and noise levels to 2^-16, which absorbs ulp differences in practice).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idx_reader.hpp"
#include "sample.hpp"

namespace retinanet::data {

// One Fashion-MNIST file pair: 28 x 28 grey items and their classes 0..9.
struct fashion_mnist_split {
    idx_images images;
    idx_labels labels;
};

// T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& fashion_mnist_class_names();

// $FOCAL_FASHION_MNIST when set and not empty, else /usr/share/datasets/fashion-mnist (Debian's
// dataset-fashion-mnist package).
std::filesystem::path default_fashion_mnist_dir();

// Reads <dir>/<split>-images-idx3-ubyte.gz and <dir>/<split>-labels-idx1-ubyte.gz, split = "train"
// or "t10k" (dir empty: default_fashion_mnist_dir()). Loaded once: while a returned pointer is
// alive, loading the same files again returns it. Thread-safe.
std::shared_ptr<const fashion_mnist_split> load_fashion_mnist(std::string_view split,
                                                              const std::filesystem::path& dir = {});

struct fmnist_det_options {
    int image_size = 128;                // square canvas side, pixels
    int min_objects = 1, max_objects = 6;
    float min_side = 12, max_side = 96;  // item side, drawn log-uniformly, rounded to whole pixels
    float max_iou = 0.3f;                // a placement whose box overlaps a placed box more is retried
    int placement_tries = 50;            // then the item is dropped
    float noise_sigma = 8;               // background noise, 8-bit levels
    int max_lines = 3;                   // clutter lines, 0..max_lines, 1-2 px wide
    float alpha_threshold = 0.1f;        // a pixel belongs to the box when alpha > this
    std::uint64_t seed = 0;
    std::filesystem::path fashion_mnist_dir;  // empty: default_fashion_mnist_dir()
};

// Throws focal::error naming the first option out of range.
void check_options(const fmnist_det_options& options);

// One image from its own seed: the generator behind both splits (image_id is left 0). Uses
// options except seed and fashion_mnist_dir.
sample render_fmnist_det(const fashion_mnist_split& items, const fmnist_det_options& options,
                         std::uint64_t image_seed);

// The train split: an endless stream over the train file. get(i) is image_id i + 1, a pure
// function of (options, i); size() is 2^48, "endless" for any training run.
class fmnist_det_train : public dataset {
public:
    static constexpr std::size_t endless = std::size_t{1} << 48;

    explicit fmnist_det_train(fmnist_det_options options = {});
    fmnist_det_train(std::shared_ptr<const fashion_mnist_split> items, fmnist_det_options options);

    std::size_t size() const override { return endless; }
    sample get(std::size_t index) const override;
    const std::vector<std::string>& class_names() const override { return fashion_mnist_class_names(); }
    const fmnist_det_options& options() const { return options_; }

private:
    std::shared_ptr<const fashion_mnist_split> items_;
    fmnist_det_options options_;
};

// The test split: `count` fixed images over the t10k file, image_id i + 1, rendered on each get().
class fmnist_det_test : public dataset {
public:
    explicit fmnist_det_test(fmnist_det_options options = {}, std::size_t count = 500);
    fmnist_det_test(std::shared_ptr<const fashion_mnist_split> items, fmnist_det_options options,
                    std::size_t count = 500);

    std::size_t size() const override { return count_; }
    sample get(std::size_t index) const override;
    const std::vector<std::string>& class_names() const override { return fashion_mnist_class_names(); }
    const fmnist_det_options& options() const { return options_; }

private:
    std::shared_ptr<const fashion_mnist_split> items_;
    fmnist_det_options options_;
    std::size_t count_ = 0;
};

}  // namespace retinanet::data
