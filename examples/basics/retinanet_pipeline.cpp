// Every RetinaNet step on one synthetic image, end to end:
//   anchors -> match + targets -> training loss and gradients -> post-processing -> COCO AP.
// The "head outputs" are made from the ground truth (the logits of the right class and anchor
// raised, the box deltas set to the encoded targets), so post-processing must find the objects
// again and COCO evaluation must give AP 1.
//
//   build/examples/example_retinanet_pipeline
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <vector>

#include <focal/retinanet.hpp>

int main() {
    const focal::size2d image{256, 320};
    const focal::index_t classes = 10;

    // 1. Anchors, torchvision's convention (P3-P7, 9 per location).
    const auto spec = focal::anchor_presets::torchvision();
    const std::vector<float> anchors = focal::make_anchors(spec, image);
    std::vector<focal::index_t> per_level;
    for (const auto& level : focal::anchor_layout(spec, image)) per_level.push_back(level.count);
    const auto a = static_cast<focal::index_t>(anchors.size() / 4);
    std::printf("anchors: %td over %zu levels\n", a, per_level.size());

    // 2. Ground truth: three objects.
    const std::vector<float> gt_boxes = {20, 30, 90, 110, 150, 40, 230, 100, 60, 150, 300, 240};
    const std::vector<std::int64_t> gt_labels = {3, 7, 1};
    const focal::ground_truth<float, std::int64_t> gt{focal::make_view(gt_boxes.data(), 3, 4), focal::make_view(gt_labels.data(), 3)};

    // 3. Targets, then head outputs that agree with them (plus noise on the logits).
    std::vector<std::int64_t> labels(static_cast<std::size_t>(a));
    std::vector<float> box_targets(static_cast<std::size_t>(a * 4));
    const auto matcher = focal::matcher_presets::torchvision();
    const focal::delta_xywh_coder coder{};
    const focal::index_t positives =
        focal::assign_targets(matcher, coder, focal::make_view(anchors.data(), a, 4), gt.boxes, gt.labels,
                              focal::make_view(labels.data(), a), focal::make_view(box_targets.data(), a, 4));
    std::printf("positive anchors: %td\n", positives);
    std::mt19937 rng(5);
    std::normal_distribution<float> noise(0.0f, 0.5f);
    std::vector<float> logits(static_cast<std::size_t>(a * classes)), deltas = box_targets;
    for (focal::index_t i = 0; i < a; ++i)
        for (focal::index_t k = 0; k < classes; ++k)
            logits[i * classes + k] = (labels[i] == k ? 4.0f : -6.0f) + noise(rng);

    // 4. The training loss (torchvision's definition) and its gradients.
    std::vector<float> cls_grad(logits.size()), box_grad(deltas.size());
    const auto loss = focal::retinanet_loss<>::torchvision();
    const auto value = focal::compute_retinanet_loss(
        loss, focal::tensor3_view<const float>(logits.data(), 1, a, classes), focal::tensor3_view<const float>(deltas.data(), 1, a, 4),
        focal::make_view(anchors.data(), a, 4), std::span<const focal::ground_truth<float, std::int64_t>>(&gt, 1),
        {.cls_logits = focal::tensor3_view<float>(cls_grad.data(), 1, a, classes), .bbox_regression = focal::tensor3_view<float>(box_grad.data(), 1, a, 4)});
    std::printf("loss: classification %.4f, box %.4f\n", value.classification, value.box);

    // 5. Post-processing: the paper's settings (100 detections, per-class NMS 0.5).
    const focal::retinanet_postprocess settings{};
    std::vector<float> boxes(100 * 4), scores(100);
    std::vector<std::int64_t> det_labels(100);
    const focal::index_t n = focal::postprocess(
        settings, focal::make_view(logits.data(), a, classes), focal::make_view(deltas.data(), a, 4), focal::make_view(anchors.data(), a, 4),
        std::span<const focal::index_t>(per_level), focal::image_size{image.height, image.width},
        focal::detections_output{focal::make_view(boxes.data(), 100, 4), focal::make_view(scores.data(), 100), focal::make_view(det_labels.data(), 100)});
    std::printf("detections: %td\n", n);
    for (focal::index_t i = 0; i < std::min<focal::index_t>(n, 3); ++i)
        std::printf("  class %lld  score %.3f  box [%.1f %.1f %.1f %.1f]\n", static_cast<long long>(det_labels[i]), scores[i],
                    boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]);

    // 6. COCO evaluation of those detections against the ground truth.
    focal::coco_ground_truth coco;
    coco.images.push_back({1, image.width, image.height});
    for (focal::index_t k = 0; k < classes; ++k) coco.categories.push_back({k, "class " + std::to_string(k)});
    for (int g = 0; g < 3; ++g) {
        const float* b = &gt_boxes[static_cast<std::size_t>(g * 4)];
        coco.annotations.push_back({g + 1, 1, gt_labels[static_cast<std::size_t>(g)], {b[0], b[1], b[2] - b[0], b[3] - b[1]},
                                    double(b[2] - b[0]) * double(b[3] - b[1]), false});
    }
    std::vector<focal::coco_detection> detections;
    for (focal::index_t i = 0; i < n; ++i)
        detections.push_back({1, det_labels[i], {boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2] - boxes[i * 4], boxes[i * 4 + 3] - boxes[i * 4 + 1]},
                              scores[i]});
    const auto result = focal::coco_evaluate(coco, std::span<const focal::coco_detection>(detections));
    std::printf("%s", focal::coco_summary_text(result).c_str());
    return result.stats[1] > 0.99 ? 0 : 1;  // AP50 of a model that agrees with the ground truth
}
