#include "evaluate.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include <focal/core/error.hpp>
#include <focal/eval/coco_eval.hpp>

#include "batch.hpp"
#include "data/coco_dataset.hpp"
#include "step.hpp"
#include "support/check.hpp"

namespace retinanet::train {
namespace {

// Grad mode off for the scope (inference keeps no forward state).
struct no_grad {
    bool previous = cpu::grad_enabled();
    no_grad() { cpu::set_grad_enabled(false); }
    ~no_grad() { cpu::set_grad_enabled(previous); }
};

// A rank's detections as bytes for the gather: per image its id, count, boxes, scores, labels.
class detection_bytes {
public:
    void put(const image_detections& d) {
        const auto n = static_cast<std::uint64_t>(d.scores.size());
        raw(&d.image_id, sizeof d.image_id);
        raw(&n, sizeof n);
        raw(d.boxes.data(), n * sizeof(data::box));
        raw(d.scores.data(), n * sizeof(float));
        raw(d.labels.data(), n * sizeof(int));
    }
    std::vector<std::byte> bytes;

private:
    void raw(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::byte*>(p);
        bytes.insert(bytes.end(), b, b + n);
    }
};

class detection_reader {
public:
    explicit detection_reader(const std::vector<std::byte>& bytes) : bytes_(bytes) {}
    image_detections next() {
        image_detections d;
        std::uint64_t n = 0;
        raw(&d.image_id, sizeof d.image_id);
        raw(&n, sizeof n);
        d.boxes.resize(n), d.scores.resize(n), d.labels.resize(n);
        raw(d.boxes.data(), n * sizeof(data::box));
        raw(d.scores.data(), n * sizeof(float));
        raw(d.labels.data(), n * sizeof(int));
        return d;
    }

private:
    void raw(void* p, std::size_t n) {
        require(at_ + n <= bytes_.size(), "detect (sharded)", "a rank's detections", "complete", concat(bytes_.size(), " bytes"));
        std::memcpy(p, bytes_.data() + at_, n);
        at_ += n;
    }
    const std::vector<std::byte>& bytes_;
    std::size_t at_ = 0;
};

}  // namespace

batch_detector make_cpu_detector(model::retinanet_model<float>& net, const inference_options& options) {
    // Anchors per padded size, generated once per detector.
    auto anchors_by_size = std::make_shared<anchor_cache>();
    return [&net, &options, anchors_by_size](const batch& b) {
        const no_grad guard;
        const auto out = net.forward(b.images);
        auto& anchors = (*anchors_by_size)[{b.images.h, b.images.w}];
        if (anchors.empty()) anchors = net.anchors(b.padded(), out.grids);
        std::vector<focal::index_t> per_level;
        for (const auto& g : out.grids) per_level.push_back(g.height * g.width * net.config().anchors_per_cell());
        const auto bn = static_cast<std::ptrdiff_t>(out.batch), d = static_cast<std::ptrdiff_t>(options.postprocess.capacity());
        batch_detections r(static_cast<std::size_t>(bn), static_cast<std::size_t>(d));
        focal::postprocess(options.postprocess, focal::tensor3_view<const float>(out.cls_logits.data(), bn, out.anchors, out.classes),
                           focal::tensor3_view<const float>(out.bbox_regression.data(), bn, out.anchors, 4),
                           focal::make_view(anchors.data(), out.anchors, 4), std::span<const focal::index_t>(per_level),
                           std::span<const focal::image_size>(b.sizes),
                           focal::batch_detections_output{focal::tensor3_view<float>(r.boxes.data(), bn, d, 4),
                                                          focal::make_view(r.scores.data(), bn, d), focal::make_view(r.labels.data(), bn, d),
                                                          focal::make_view(r.counts.data(), bn)},
                           focal::exec::parallel_policy{static_cast<std::size_t>(cpu::threads())});
        return r;
    };
}

std::vector<image_detections> detect(const batch_detector& detector, const model::model_config& config, std::vector<data::sample> samples,
                                     const inference_options& options) {
    focal::validate(options.postprocess);
    const std::size_t per_batch = static_cast<std::size_t>(std::max(1, options.batch));
    std::vector<image_detections> result;
    for (std::size_t first = 0; first < samples.size(); first += per_batch) {
        const std::size_t n = std::min(per_batch, samples.size() - first);
        std::vector<float> scales;
        for (std::size_t i = first; i < first + n; ++i) scales.push_back(resize_for_model(samples[i], config));
        const batch b = make_batch(std::span<const data::sample>(samples.data() + first, n), config);
        const batch_detections r = detector(b);
        const std::size_t d = r.per_image;
        require(r.counts.size() == n && r.boxes.size() == n * d * 4, "detect", "the detector's output",
                "one row of counts and D rows of boxes per image", r.counts.size());
        for (std::size_t i = 0; i < n; ++i) {
            image_detections det;
            det.image_id = samples[first + i].image_id;
            const float inv = 1.0f / scales[i];
            for (std::int64_t j = 0; j < r.counts[i]; ++j) {
                const float* bx = &r.boxes[(i * d + static_cast<std::size_t>(j)) * 4];
                det.boxes.push_back({bx[0] * inv, bx[1] * inv, bx[2] * inv, bx[3] * inv});
                det.scores.push_back(r.scores[i * d + static_cast<std::size_t>(j)]);
                det.labels.push_back(static_cast<int>(r.labels[i * d + static_cast<std::size_t>(j)]));
            }
            result.push_back(std::move(det));
        }
        if (options.progress) options.progress(first + n, samples.size());
    }
    return result;
}

std::vector<image_detections> detect(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                     std::size_t count, const inference_options& options) {
    count = count == 0 ? data.size() : std::min(count, data.size());
    std::vector<image_detections> result;
    const std::size_t chunk = static_cast<std::size_t>(std::max(1, options.batch)) * 8;  // bounded memory
    for (std::size_t first = 0; first < count; first += chunk) {
        std::vector<data::sample> samples;
        for (std::size_t i = first; i < std::min(count, first + chunk); ++i) samples.push_back(data.get(i));
        inference_options inner = options;
        if (options.progress) inner.progress = [&](std::size_t done, std::size_t) { options.progress(first + done, count); };
        auto part = detect(detector, config, std::move(samples), inner);
        std::move(part.begin(), part.end(), std::back_inserter(result));
    }
    return result;
}

std::vector<image_detections> detect(model::retinanet_model<float>& net, std::vector<data::sample> samples, const inference_options& options) {
    return detect(make_cpu_detector(net, options), net.config(), std::move(samples), options);
}

std::vector<image_detections> detect(model::retinanet_model<float>& net, const data::dataset& data, std::size_t count,
                                     const inference_options& options) {
    return detect(make_cpu_detector(net, options), net.config(), data, count, options);
}

std::vector<focal::coco_detection> to_coco(const std::vector<image_detections>& detections) {
    std::vector<focal::coco_detection> out;
    for (const auto& img : detections)
        for (std::size_t j = 0; j < img.boxes.size(); ++j) {
            const auto& b = img.boxes[j];
            out.push_back({img.image_id, img.labels[j] + 1, {b[0], b[1], b[2] - b[0], b[3] - b[1]}, img.scores[j]});
        }
    return out;
}

focal::coco_eval_result evaluate(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                 std::size_t count, const inference_options& options) {
    count = count == 0 ? data.size() : std::min(count, data.size());
    const auto detections = to_coco(detect(detector, config, data, count, options));
    const auto ground_truth = data::make_coco_ground_truth(data, count);
    return focal::coco_evaluate(ground_truth, std::span<const focal::coco_detection>(detections));
}

std::vector<image_detections> detect(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                     std::size_t count, const inference_options& options, distributed::process_group* group) {
    if (group == nullptr || group->size() == 1) return detect(detector, config, data, count, options);
    count = count == 0 ? data.size() : std::min(count, data.size());
    const std::size_t per_batch = static_cast<std::size_t>(std::max(1, options.batch)), batches = (count + per_batch - 1) / per_batch;
    const auto ranks = static_cast<std::size_t>(group->size());
    detection_bytes mine;
    for (std::size_t b = static_cast<std::size_t>(group->rank()); b < batches; b += ranks) {
        std::vector<data::sample> samples;
        for (std::size_t i = b * per_batch; i < std::min(count, (b + 1) * per_batch); ++i) samples.push_back(data.get(i));
        for (const auto& d : detect(detector, config, std::move(samples), {options.batch, options.postprocess, {}})) mine.put(d);
        if (options.progress) options.progress(std::min(count, (b + 1) * per_batch), count);
    }
    const auto parts = group->gather(mine.bytes, 0);
    std::vector<image_detections> all;
    if (!group->is_root()) return all;
    std::vector<detection_reader> readers(parts.begin(), parts.end());
    for (std::size_t b = 0; b < batches; ++b)
        for (std::size_t i = b * per_batch; i < std::min(count, (b + 1) * per_batch); ++i) all.push_back(readers[b % ranks].next());
    return all;
}

focal::coco_eval_result evaluate(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                 std::size_t count, const inference_options& options, distributed::process_group* group) {
    if (group == nullptr || group->size() == 1) return evaluate(detector, config, data, count, options);
    count = count == 0 ? data.size() : std::min(count, data.size());
    const auto detections = to_coco(detect(detector, config, data, count, options, group));
    focal::coco_eval_result result;
    if (group->is_root()) result = focal::coco_evaluate(data::make_coco_ground_truth(data, count), std::span<const focal::coco_detection>(detections));
    distributed::broadcast_values(*group, std::span<double>(result.stats));
    return result;
}

focal::coco_eval_result evaluate(model::retinanet_model<float>& net, const data::dataset& data, std::size_t count,
                                 const inference_options& options) {
    return evaluate(make_cpu_detector(net, options), net.config(), data, count, options);
}

}  // namespace retinanet::train
