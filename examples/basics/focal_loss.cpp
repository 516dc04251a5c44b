// The focal loss over your own memory: logits for N anchors x K classes, one integer label per
// anchor (class index, -1 background, -2 ignored), gradient written in place of your buffer.
//
//   build/examples/example_focal_loss
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include <focal/retinanet.hpp>

int main() {
    const focal::index_t anchors = 20000, classes = 80;
    std::vector<float> logits(anchors * classes), grad(logits.size());
    std::vector<std::int32_t> labels(anchors, -1);  // background everywhere ...
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(-4.0f, 2.0f);
    for (auto& x : logits) x = normal(rng);
    for (focal::index_t i = 0; i < anchors; i += 97) labels[i] = static_cast<std::int32_t>(i % classes);  // ... a few positives
    for (focal::index_t i = 5; i < anchors; i += 50) labels[i] = -2;  // ... and some ignored anchors
    focal::index_t positives = 0;
    for (auto l : labels) positives += l >= 0;

    // The paper's loss: alpha = 0.25, gamma = 2, normalized by the number of positive anchors.
    const focal::sigmoid_focal_loss loss{.alpha = 0.25f, .gamma = 2.0f};
    const double value = focal::classification_loss(
        loss, focal::make_view(logits.data(), anchors, classes), focal::make_view(labels.data(), anchors),
        focal::reduction::divide_by(static_cast<double>(positives)),
        {.grad = focal::make_view(grad.data(), anchors, classes)},
        focal::exec::parallel);  // SIMD on every core; exec::simd for one thread, exec::scalar for reference
    std::printf("focal loss over %td anchors x %td classes, %td positives: %.6f\n", anchors, classes, positives, value);
    std::printf("d loss / d logit at anchor 0 (label %d): class 0 %+.3e, class 1 %+.3e\n", labels[0], grad[0], grad[1]);

    // gamma = 0 is alpha-balanced cross entropy; alpha < 0 turns the weighting off.
    const double bce = focal::classification_loss(focal::sigmoid_focal_loss{.alpha = -1.0f, .gamma = 0.0f},
                                                  focal::make_view(logits.data(), anchors, classes),
                                                  focal::make_view(labels.data(), anchors), focal::reduction::mean());
    std::printf("plain binary cross entropy, mean over non-ignored elements: %.6f\n", bce);

    // Bad input is an exception that says what was wrong.
    labels[3] = 80;
    try {
        focal::classification_loss(loss, focal::make_view(logits.data(), anchors, classes), focal::make_view(labels.data(), anchors));
    } catch (const focal::error& e) {
        std::printf("focal::error: %s\n", e.what());
    }
    return 0;
}
