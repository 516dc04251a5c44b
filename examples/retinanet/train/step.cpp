#include "step.hpp"

#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::train {

focal::retinanet_loss_value forward_backward(model::retinanet_model<float>& net, const cpu::tensor<float>& images,
                                             const std::vector<std::vector<float>>& boxes,
                                             const std::vector<std::vector<std::int64_t>>& labels, const detection_loss& loss,
                                             focal::retinanet_loss_state& state, anchor_cache& anchors) {
    require(boxes.size() == static_cast<std::size_t>(images.n) && labels.size() == boxes.size(), "forward_backward",
            "boxes and labels", "one entry per image (" + std::to_string(images.n) + ")",
            concat(boxes.size(), " and ", labels.size()));
    const auto out = net.forward(images);
    auto& cached = anchors[{images.h, images.w}];
    if (cached.empty()) cached = net.anchors({images.h, images.w}, out.grids);
    std::vector<focal::ground_truth<float, std::int64_t>> targets;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const auto g = static_cast<std::ptrdiff_t>(labels[i].size());
        require(boxes[i].size() == static_cast<std::size_t>(g) * 4, "forward_backward", "boxes[" + std::to_string(i) + "]",
                "4 values per label (" + std::to_string(4 * g) + ")", boxes[i].size());
        targets.push_back({focal::make_view(boxes[i].data(), g, 4), focal::make_view(labels[i].data(), g)});
    }
    const auto n = static_cast<std::ptrdiff_t>(out.batch);
    std::vector<float> d_cls(out.cls_logits.size()), d_box(out.bbox_regression.size());
    const auto value = focal::compute_retinanet_loss(
        loss, focal::tensor3_view<const float>(out.cls_logits.data(), n, out.anchors, out.classes),
        focal::tensor3_view<const float>(out.bbox_regression.data(), n, out.anchors, 4), focal::make_view(cached.data(), out.anchors, 4),
        std::span<const focal::ground_truth<float, std::int64_t>>(targets),
        focal::retinanet_gradients<float>{focal::tensor3_view<float>(d_cls.data(), n, out.anchors, out.classes),
                                          focal::tensor3_view<float>(d_box.data(), n, out.anchors, 4)},
        &state, focal::exec::parallel_policy{static_cast<std::size_t>(cpu::threads())});
    net.backward(d_cls, d_box);
    return value;
}

}  // namespace retinanet::train
