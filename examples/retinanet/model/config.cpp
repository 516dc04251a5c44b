#include "config.hpp"

#include <cmath>

#include <focal/anchor/presets.hpp>
#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::model {

int model_config::anchors_per_cell() const { return static_cast<int>(focal::anchors_per_cell(anchors.levels.front())); }
int model_config::stage_channels(int stage) const { return widths[stage] * (block == block_kind::bottleneck ? 4 : 1); }
int model_config::c5_channels() const { return stage_channels(3); }

model_config paper_config(int num_classes) {
    model_config c;
    c.name = "paper";
    c.num_classes = num_classes;
    c.anchors = focal::anchor_presets::detectron2();
    return c;
}

model_config torchvision_v1_config(int num_classes) {
    model_config c = paper_config(num_classes);
    c.name = "torchvision_v1";
    c.backbone_norm = norm_kind::frozen_batch;
    c.head_norm = norm_kind::none;
    c.zero_init_residual = false;
    c.p6_from_p5 = true;
    c.anchors = focal::anchor_presets::torchvision();
    return c;
}

// Sized for 128 px FMNIST-Det images on two cores: one block per stage, widths 16..128, a
// 64-channel FPN and GroupNorm heads of two convs. Objects are 12..96 px, so anchors start at 16
// px on P3 (stride 8) and double per level, three scales and three ratios per cell.
model_config demo_config(int num_classes) {
    model_config c;
    c.name = "demo";
    c.num_classes = num_classes;
    c.stem_channels = 16;
    c.stem_kernel = 3;
    c.stem_pool = false;
    c.block = block_kind::basic;
    c.blocks = {1, 1, 1, 1};
    c.widths = {16, 32, 64, 128};
    c.norm_groups = 8;
    c.fpn_channels = 64;
    c.head_convs = 2;
    c.anchors = focal::anchor_presets::detectron2();
    for (std::size_t l = 0; l < c.anchors.levels.size(); ++l) c.anchors.levels[l].sizes = {16.0 * std::ldexp(1.0, static_cast<int>(l))};
    c.anchors.size_divisibility = 128;
    c.image_size = 128;
    c.max_image_size = 128;
    return c;
}

model_config tiny_config(int num_classes) {
    model_config c = demo_config(num_classes);
    c.name = "tiny";
    c.stem_channels = 4;
    c.widths = {4, 4, 8, 8};
    c.norm_groups = 2;
    c.fpn_channels = 8;
    c.head_convs = 1;
    c.image_size = 64;
    c.max_image_size = 64;
    return c;
}

model_config config_by_name(const std::string& name, int num_classes) {
    if (name == "paper") return paper_config(num_classes);
    if (name == "torchvision_v1") return torchvision_v1_config(num_classes);
    if (name == "demo") return demo_config(num_classes);
    if (name == "tiny") return tiny_config(num_classes);
    std::string known;
    for (const char* n : config_names) known += concat(known.empty() ? "" : ", ", n);
    fail("config_by_name", "name", "one of " + known, "'" + name + "'");
}

model_config with_resnet_depth(model_config c, int depth) {
    switch (depth) {
        case 18: c.block = block_kind::basic, c.blocks = {2, 2, 2, 2}; break;
        case 34: c.block = block_kind::basic, c.blocks = {3, 4, 6, 3}; break;
        case 50: c.block = block_kind::bottleneck, c.blocks = {3, 4, 6, 3}; break;
        case 101: c.block = block_kind::bottleneck, c.blocks = {3, 4, 23, 3}; break;
        case 152: c.block = block_kind::bottleneck, c.blocks = {3, 8, 36, 3}; break;
        default: fail("with_resnet_depth", "depth", "18, 34, 50, 101 or 152", depth);
    }
    return c;
}

}  // namespace retinanet::model
