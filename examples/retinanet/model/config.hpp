// The example RetinaNet's configuration: backbone, FPN, heads and anchors. Named configurations:
//   paper     ResNet-50-FPN, 256 channels, 4 head convs, GroupNorm heads, 800 px (Lin et al. 2017)
//   torchvision_v1  torchvision's retinanet_resnet50_fpn (frozen BatchNorm, P6 from P5, plain
//             heads, torchvision's anchors): the layout its state dicts import into
//   demo      a small ResNet-style network sized for a 2-core CPU at 128 px (FMNIST-Det)
//   tiny      a few thousand parameters, for tests
#pragma once

#include <array>
#include <string>
#include <vector>

#include <focal/anchor/anchor_spec.hpp>

namespace retinanet::model {

enum class block_kind { basic, bottleneck };  // ResNet-18/34 blocks; ResNet-50/101 blocks (stride on the 3x3)
enum class norm_kind { group, frozen_batch, none };

struct model_config {
    std::string name = "custom";
    int num_classes = 10;

    // Backbone: stem conv (kernel, stride 2) + norm + ReLU [+ 3x3/2 max-pool], then four stages
    // (C2..C5), the first at stride 1, the others at stride 2.
    int stem_channels = 64;
    int stem_kernel = 7;
    bool stem_pool = true;
    block_kind block = block_kind::bottleneck;
    std::array<int, 4> blocks{3, 4, 6, 3};
    std::array<int, 4> widths{64, 128, 256, 512};  // bottleneck outputs are 4x these
    norm_kind backbone_norm = norm_kind::group;
    int norm_groups = 32;  // GroupNorm groups (capped at the channel count)
    bool zero_init_residual = true;  // last norm of each block starts at 0 (Goyal et al.): trains from scratch

    // FPN P3-P5 from C3-C5, P6 by a 3x3/2 conv from C5 (paper) or P5 (torchvision v1), P7 = conv(ReLU(P6)).
    int fpn_channels = 256;
    bool p6_from_p5 = false;

    // Heads: head_convs x (3x3 conv [+ norm] + ReLU), then the K A / 4 A output conv.
    int head_convs = 4;
    norm_kind head_norm = norm_kind::group;
    double prior_probability = 0.01;  // class bias -log((1 - pi) / pi)

    focal::anchor_spec anchors;       // levels 3..7; their anchors-per-cell must agree
    int image_size = 800;             // training images are resized so their shorter side is this
    int max_image_size = 1333;
    std::array<float, 3> pixel_mean{123.675f, 116.28f, 103.53f};  // normalization of RGB 0..255
    std::array<float, 3> pixel_std{58.395f, 57.12f, 57.375f};

    int anchors_per_cell() const;
    int c5_channels() const;
    int stage_channels(int stage) const;  // output channels of stage 0..3 (C2..C5)
};

model_config paper_config(int num_classes = 80);
model_config torchvision_v1_config(int num_classes = 91);
model_config demo_config(int num_classes = 10);
model_config tiny_config(int num_classes = 3);
// The named configurations, config_by_name's names.
inline constexpr std::array<const char*, 4> config_names{"paper", "torchvision_v1", "demo", "tiny"};
// One of config_names; throws focal::error naming the known ones otherwise.
model_config config_by_name(const std::string& name, int num_classes);

// The backbone of ResNet-`depth` (He et al. 2016, Table 1): 18 and 34 with basic blocks, 50, 101
// and 152 with bottlenecks, their blocks per stage; the widths stay c's (torchvision's are
// 64, 128, 256, 512). Throws focal::error for any other depth.
model_config with_resnet_depth(model_config c, int depth);

}  // namespace retinanet::model
