// Every detection step of a RetinaNet training and inference step on the GPU, for a batch of two
// synthetic images, with nothing copied to the host until the results are printed:
//   anchors (made once on the host) -> match + targets for the batch -> focal loss and box loss
//   normalized by the positives counted on the device -> post-processing of the batch.
// The "head outputs" are made from the targets (the right class's logit raised, the deltas set to
// the encoded targets), so post-processing must find the objects again.
//
//   build/examples/cuda/example_cuda_retinanet_steps      (exit 77 where no GPU is present)
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include <focal/cuda.cuh>
#include <focal/retinanet.hpp>

namespace {

using focal::index_t;
template <class T>
using view3 = focal::cuda::device_tensor3_view<T>;

// logits(b, a, k) = 4 if labels(b, a) == k else -6; deltas = box targets.
__global__ void fake_head_kernel(view3<float> logits, focal::cuda::device_matrix_view<const std::int64_t> labels) {
    const index_t b = blockIdx.y, a = focal::cuda::thread_index();
    if (a >= logits.extent(1)) return;
    for (index_t k = 0; k < logits.extent(2); ++k) logits(b, a, k) = labels(b, a) == k ? 4.0f : -6.0f;
}

// Scratch memory for one call; every entry point takes a workspace of the size it asked for.
struct scratch {
    focal::cuda::device_buffer<unsigned char> memory;
    focal::cuda::workspace get(std::size_t bytes) {
        if (memory.size() < bytes) memory = focal::cuda::device_buffer<unsigned char>(bytes);
        return {memory.data(), bytes};
    }
};

}  // namespace

int main() {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("no CUDA device: nothing to run\n");
        return 77;
    }
    const focal::size2d image{256, 320};
    const index_t batch = 2, classes = 10, gmax = 3;
    cudaStream_t stream;
    FOCAL_CUDA_CHECK(cudaStreamCreate(&stream));

    // 1. Anchors on the host (once per image size), copied to the device.
    const auto spec = focal::anchor_presets::torchvision();
    const std::vector<float> anchors_host = focal::make_anchors(spec, image);
    std::vector<index_t> per_level;
    for (const auto& level : focal::anchor_layout(spec, image)) per_level.push_back(level.count);
    const auto a = static_cast<index_t>(anchors_host.size() / 4);
    const focal::cuda::device_buffer<float> anchors(anchors_host);

    // 2. Ground truth, padded to gmax boxes per image: image 0 has three objects, image 1 one.
    const focal::cuda::device_buffer<float> gt_boxes(std::vector<float>{20, 30, 90, 110, 150, 40, 230, 100, 60, 150, 300, 240,  //
                                                                        100, 60, 200, 180, 0, 0, 0, 0, 0, 0, 0, 0});
    const focal::cuda::device_buffer<std::int64_t> gt_labels(std::vector<std::int64_t>{3, 7, 1, 5, 0, 0});
    const focal::cuda::device_buffer<std::int32_t> gt_counts(std::vector<std::int32_t>{3, 1});

    // 3. Targets for the whole batch in one call; the positives are counted on the device.
    focal::cuda::device_buffer<std::int64_t> labels(static_cast<std::size_t>(batch * a)), positives(batch);
    focal::cuda::device_buffer<float> box_targets(static_cast<std::size_t>(batch * a * 4));
    scratch ws;
    const auto matcher = focal::matcher_presets::torchvision();
    const focal::delta_xywh_coder coder{};
    const view3<const float> gt_view(gt_boxes.data(), batch, gmax, 4);
    const view3<float> targets_view(box_targets.data(), batch, a, 4);
    focal::cuda::assign_targets_batched(matcher, coder, anchors.view(a, 4), gt_view, gt_counts.view(), view3<const float>{},
                                        focal::cuda::device_vector_view<const std::int32_t>{}, gt_labels.view(batch, gmax),
                                        labels.view(batch, a), targets_view, positives.view(),
                                        ws.get(focal::cuda::assign_targets_batched_workspace_size(batch, a, gmax)), stream);

    // 4. Head outputs that agree with the targets.
    focal::cuda::device_buffer<float> logits(static_cast<std::size_t>(batch * a * classes));
    const view3<float> logits_view(logits.data(), batch, a, classes);
    fake_head_kernel<<<dim3(focal::cuda::grid_size(a), static_cast<unsigned>(batch)), 256, 0, stream>>>(
        logits_view, labels.view(batch, a));
    FOCAL_CUDA_CHECK(cudaGetLastError());

    // 5. The training losses, torchvision's normalizer: image b's loss / (B * max(1, positives_b)).
    //    Gradients go to device memory beside the head outputs.
    focal::cuda::device_buffer<double> cls_loss(1), box_loss(1);
    focal::cuda::device_buffer<float> cls_grad(logits.size()), box_grad(box_targets.size());
    const focal::cuda::device_normalizer<std::int64_t> per_image{positives.data(), static_cast<double>(batch), 1.0};
    focal::cuda::classification_loss(focal::sigmoid_focal_loss{}, view3<const float>(logits_view), labels.view(batch, a),
                                      per_image,
                                      focal::cuda::batch_loss_output<float>{nullptr, cls_loss.data(),
                                                                            view3<float>(cls_grad.data(), batch, a, classes)},
                                      ws.get(focal::cuda::classification_loss_workspace_size(batch, a, classes)), stream);
    // The predicted deltas are the targets, so the L1 loss is 0.
    focal::cuda::box_regression_loss(focal::l1_loss{}, view3<const float>(targets_view), view3<const float>(targets_view),
                                     labels.view(batch, a), per_image,
                                     focal::cuda::batch_loss_output<float>{nullptr, box_loss.data(),
                                                                           view3<float>(box_grad.data(), batch, a, 4)},
                                     ws.get(focal::cuda::box_regression_loss_workspace_size(batch, a)), stream);

    // 6. Post-processing of the batch: the paper's settings (100 detections, per-class NMS 0.5).
    const focal::retinanet_postprocess settings{};
    const index_t d = settings.capacity();  // the rows an image's output needs (max_detections)
    focal::cuda::device_buffer<float> boxes(static_cast<std::size_t>(batch * d * 4)), scores(static_cast<std::size_t>(batch * d));
    focal::cuda::device_buffer<std::int64_t> det_labels(static_cast<std::size_t>(batch * d));
    focal::cuda::device_buffer<std::int32_t> counts(batch);
    const std::vector<focal::image_size> sizes(static_cast<std::size_t>(batch), focal::image_size{image.height, image.width});
    focal::cuda::postprocess(settings, view3<const float>(logits_view), view3<const float>(targets_view), anchors.view(a, 4),
                             std::span<const index_t>(per_level), std::span<const focal::image_size>(sizes),
                             focal::batch_detections_output{view3<float>(boxes.data(), batch, d, 4), scores.view(batch, d),
                                                            det_labels.view(batch, d), counts.view()},
                             ws.get(focal::cuda::postprocess_workspace_size(settings, batch, a, classes, per_level)), stream);

    // 7. Only now does the host wait, to print.
    focal::cuda::synchronize(stream);
    const auto pos = positives.to_host();
    const auto cls = cls_loss.to_host(), box = box_loss.to_host();
    const auto n = counts.to_host();
    const auto b = boxes.to_host(), s = scores.to_host();
    const auto l = det_labels.to_host();
    std::printf("anchors: %td, positives per image: %lld %lld\n", a, static_cast<long long>(pos[0]), static_cast<long long>(pos[1]));
    std::printf("loss: classification %.4f, box %.4f\n", cls[0], box[0]);
    bool found = true;
    for (index_t i = 0; i < batch; ++i) {
        std::printf("image %td: %d detections\n", i, n[static_cast<std::size_t>(i)]);
        for (index_t j = 0; j < std::min<index_t>(n[static_cast<std::size_t>(i)], 3); ++j) {
            const std::size_t r = static_cast<std::size_t>(i * d + j);
            std::printf("  class %lld  score %.3f  box [%.1f %.1f %.1f %.1f]\n", static_cast<long long>(l[r]), s[r], b[4 * r],
                        b[4 * r + 1], b[4 * r + 2], b[4 * r + 3]);
        }
        found = found && n[static_cast<std::size_t>(i)] >= (i == 0 ? 3 : 1);
    }
    FOCAL_CUDA_CHECK(cudaStreamDestroy(stream));
    return found && box[0] == 0.0 ? 0 : 1;
}
