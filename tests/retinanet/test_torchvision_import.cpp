// Importing torchvision's RetinaNet reproduces torchvision's detections. The weights are formula
// weights (formula_weights.hpp; the real 130 MB cannot be committed) set by state-dict name into
// the torchvision_v1 model; tests/data/retinanet/make_torchvision_import_fixture.py set the same
// values into torchvision 0.14's retinanet_resnet50_fpn (FrozenBatchNorm2d) and saved its raw head
// outputs and detections on import_image.png (136 x 100, padded to 160 x 128, not resized):
// 300 detections from all five levels (torchvision's padded // grid strides: P6 is 64 x 53),
// 43 labels, with margins (score gaps, NMS IoUs, the 300 cut) that the script reports. Measured:
// logits within ~1e-5, boxes within ~1.5e-4 px, scores within ~3e-6, on 1, 2, 3 and 7 threads.
//
// FOCAL_TORCHVISION_NPZ=file (optional) loads the parameters from an npz written by that script's
// --npz instead (train::load_checkpoint: the whole import path of a real state dict) and checks
// that they equal this formula bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include <doctest/doctest.h>

#include "data/image.hpp"
#include "model/retinanet_model.hpp"
#include "retinanet/formula_weights.hpp"
#include "support/fixtures.hpp"
#include "train/batch.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"

using namespace retinanet;

namespace {

std::filesystem::path fixture_dir() { return focal_test::data_dir() / "retinanet"; }

model::model_config import_config() {
    auto config = model::torchvision_v1_config(91);
    config.image_size = 100;       // the fixture's shorter side: scale min(100 / 100, 1333 / 136) = 1
    config.max_image_size = 1333;  // torchvision's transform got min_size 100 (and scale 1 was checked there)
    return config;
}

void load_weights(model::retinanet_model<float>& net) {
    std::set<std::string> names;
    for (auto* p : net.parameters()) names.insert(p->name);
    REQUIRE(names.size() == 301);  // every state-dict entry (torchvision_v1_keys.txt), once
    if (const char* npz = std::getenv("FOCAL_TORCHVISION_NPZ"); npz && *npz) {
        MESSAGE("parameters from " << std::string(npz));
        CHECK_FALSE(train::load_checkpoint(npz, net.parameters(), nullptr, nullptr));  // parameters only
        // Python's formula and this one agree bit for bit.
        std::size_t differ = 0;
        for (auto* p : net.parameters()) differ += p->value != focal_test::formula_values(p->name, p->shape);
        CHECK(differ == 0);
        return;
    }
    for (auto* p : net.parameters()) p->value = focal_test::formula_values(p->name, p->shape);
}

data::sample fixture_sample() {
    data::sample s;
    s.image_id = 1;
    s.picture = data::read_image(fixture_dir() / "import_image.png");
    REQUIRE(s.picture.width == 136);
    REQUIRE(s.picture.height == 100);
    return s;
}

}  // namespace

TEST_CASE("torchvision import: formula weights reproduce torchvision 0.14's head outputs and detections") {
    model::retinanet_model<float> net(import_config());
    load_weights(net);
    const auto sample = fixture_sample();

    SUBCASE("raw head outputs: the first 8 anchors of every level") {
        const auto expected_cls = xt::load_npy<float>((fixture_dir() / "import_head_cls.npy").string());  // 5 x 8 x 91
        const auto expected_box = xt::load_npy<float>((fixture_dir() / "import_head_box.npy").string());  // 5 x 8 x 4
        REQUIRE(expected_cls.shape(0) == 5);
        cpu::set_grad_enabled(false);
        auto s = sample;
        CHECK(train::resize_for_model(s, net.config()) == 1.0f);
        const auto b = train::make_batch(std::span<const data::sample>(&s, 1), net.config());
        CHECK(b.images.h == 128);
        CHECK(b.images.w == 160);
        const auto out = net.forward(b.images);
        cpu::set_grad_enabled(true);
        const std::vector<focal::size2d> grids{{16, 20}, {8, 10}, {4, 5}, {2, 3}, {1, 2}};
        REQUIRE(out.grids.size() == 5);
        for (int l = 0; l < 5; ++l) {
            CHECK(out.grids[l].height == grids[l].height);
            CHECK(out.grids[l].width == grids[l].width);
        }
        double max_cls = 0, max_box = 0;
        std::ptrdiff_t start = 0;
        for (int l = 0; l < 5; ++l) {
            for (std::size_t a = 0; a < 8; ++a) {
                for (std::size_t k = 0; k < 91; ++k)
                    max_cls = std::max(max_cls, std::abs(double(out.cls_logits[(start + a) * 91 + k]) - expected_cls(l, a, k)));
                for (std::size_t c = 0; c < 4; ++c)
                    max_box = std::max(max_box, std::abs(double(out.bbox_regression[(start + a) * 4 + c]) - expected_box(l, a, c)));
            }
            start += grids[l].height * grids[l].width * 9;
        }
        MESSAGE("head outputs: max |logit difference| " << max_cls << ", max |delta difference| " << max_box);
        CHECK(max_cls < 1e-3);
        CHECK(max_box < 1e-4);
    }

    SUBCASE("detections") {
        const auto expected_boxes = xt::load_npy<float>((fixture_dir() / "import_boxes.npy").string());
        const auto expected_scores = xt::load_npy<float>((fixture_dir() / "import_scores.npy").string());
        const auto expected_labels = xt::load_npy<std::int64_t>((fixture_dir() / "import_labels.npy").string());
        const std::size_t n = expected_scores.size();
        REQUIRE(n > 100);

        train::inference_options options;
        options.batch = 1;
        options.postprocess.score_threshold = 0.05f;
        options.postprocess.max_candidates_per_level = 1000;
        options.postprocess.nms.iou_threshold = 0.5;
        options.postprocess.max_detections = 300;
        options.postprocess.nms.mode = focal::batched_mode::torchvision;
        const auto result = train::detect(net, std::vector<data::sample>{sample}, options);
        REQUIRE(result.size() == 1);
        const auto& det = result[0];
        REQUIRE(det.scores.size() == n);
        double max_box = 0, max_score = 0;
        std::size_t label_mismatches = 0;
        for (std::size_t i = 0; i < n; ++i) {
            INFO("detection " << i);
            if (det.labels[i] != expected_labels(i)) ++label_mismatches;
            CHECK(det.labels[i] == expected_labels(i));
            max_score = std::max(max_score, std::abs(double(det.scores[i]) - expected_scores(i)));
            for (std::size_t c = 0; c < 4; ++c) max_box = std::max(max_box, std::abs(double(det.boxes[i][c]) - expected_boxes(i, c)));
        }
        MESSAGE(n << " detections: " << label_mismatches << " label mismatches, max |box difference| " << max_box
                  << " px, max |score difference| " << max_score);
        CHECK(max_box <= 1e-2);
        CHECK(max_score <= 1e-4);
    }
}
