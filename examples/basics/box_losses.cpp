// Box-regression losses over the positive anchors: smooth L1 / L1 on encoded deltas (the paper,
// torchvision) and generalized IoU on decoded boxes.
//
//   build/examples/example_box_losses
#include <cstdint>
#include <cstdio>
#include <vector>

#include <focal/retinanet.hpp>

int main() {
    // Four anchors; two are positive (matched to ground truth), one negative, one ignored.
    const std::vector<std::int32_t> labels = {3, focal::background_label, 0, focal::ignored_label};
    const std::vector<float> deltas = {0.1f, -0.2f, 0.05f, 0.3f, 9, 9, 9, 9, -0.4f, 0.0f, 0.2f, -0.1f, 7, 7, 7, 7};
    const std::vector<float> target_deltas = {0.0f, -0.1f, 0.0f, 0.5f, 0, 0, 0, 0, -0.5f, 0.1f, 0.0f, 0.0f, 0, 0, 0, 0};
    std::vector<float> grad(deltas.size());
    const auto n = static_cast<focal::index_t>(labels.size());

    const double l1 = focal::box_regression_loss(focal::l1_loss{}, focal::make_view(deltas.data(), n, 4),
                                                 focal::make_view(target_deltas.data(), n, 4), focal::make_view(labels.data(), n),
                                                 focal::reduction::divide_by(2.0), focal::box_loss_output<float>{.grad = focal::make_view(grad.data(), n, 4)});
    std::printf("L1 over 2 positives / 2: %.4f  (grad of anchor 0: %+.2f %+.2f %+.2f %+.2f)\n", l1, grad[0], grad[1], grad[2], grad[3]);

    const double smooth = focal::box_regression_loss(focal::smooth_l1_loss{.beta = 1.0f / 9.0f}, focal::make_view(deltas.data(), n, 4),
                                                     focal::make_view(target_deltas.data(), n, 4), focal::make_view(labels.data(), n),
                                                     focal::reduction::divide_by(2.0));
    std::printf("smooth L1 (beta 1/9) / 2: %.4f\n", smooth);

    // GIoU compares decoded xyxy boxes.
    const std::vector<float> boxes = {10, 10, 50, 60, 0, 0, 1, 1, 100, 100, 140, 120, 0, 0, 1, 1};
    const std::vector<float> gt = {12, 8, 48, 64, 0, 0, 1, 1, 130, 90, 180, 125, 0, 0, 1, 1};
    const double giou = focal::box_regression_loss(focal::giou_loss{}, focal::make_view(boxes.data(), n, 4),
                                                   focal::make_view(gt.data(), n, 4), focal::make_view(labels.data(), n),
                                                   focal::reduction::mean());
    std::printf("GIoU loss, mean over positives: %.4f\n", giou);
    return 0;
}
