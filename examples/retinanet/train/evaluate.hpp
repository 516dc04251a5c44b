// Inference over a dataset and COCO evaluation with focal's evaluator: images are resized for the
// model, batched, run without gradients by a batch_detector (the CPU model with
// focal::postprocess (batch form), or the GPU's with focal::cuda::postprocess: per-level top-k,
// class-aware NMS, 100 detections) and mapped back to the original pixels.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <focal/eval/coco_result.hpp>
#include <focal/eval/coco_types.hpp>
#include <focal/retinanet/postprocess.hpp>

#include "data/sample.hpp"
#include "distributed/process_group.hpp"
#include "model/retinanet_model.hpp"

namespace retinanet::train {

struct image_detections {
    std::int64_t image_id = 0;
    std::vector<data::box> boxes;  // original image pixels, x1 y1 x2 y2
    std::vector<float> scores;
    std::vector<int> labels;
};

struct inference_options {
    int batch = 8;
    focal::retinanet_postprocess postprocess{};
    std::function<void(std::size_t done, std::size_t total)> progress;  // optional
};

struct batch;

// One batch's post-processed detections in network pixels, as focal::postprocess's batch form writes them:
// image i's counts[i] detections are rows [i D, i D + counts[i]) of boxes (x1 y1 x2 y2), scores and
// labels, D = per_image.
struct batch_detections {
    std::size_t per_image = 0;
    std::vector<float> boxes, scores;
    std::vector<std::int64_t> labels, counts;

    batch_detections() = default;
    batch_detections(std::size_t images, std::size_t d)
        : per_image(d), boxes(images * d * 4), scores(images * d), labels(images * d), counts(images) {}
};
// Runs a network and the post-processing on one batch: the CPU model's (below) or a GPU's.
using batch_detector = std::function<batch_detections(const batch&)>;

// The CPU model's detector: forward without gradients, focal::postprocess on the host.
// `options` must outlive it.
batch_detector make_cpu_detector(model::retinanet_model<float>& net, const inference_options& options);

// Detections for samples [0, count) of `data` (count 0: all).
std::vector<image_detections> detect(model::retinanet_model<float>& net, const data::dataset& data, std::size_t count,
                                     const inference_options& options = {});
// The same for samples already in memory.
std::vector<image_detections> detect(model::retinanet_model<float>& net, std::vector<data::sample> samples,
                                     const inference_options& options = {});

// The same through any detector (a model of `config`).
std::vector<image_detections> detect(const batch_detector& detector, const model::model_config& config, std::vector<data::sample> samples,
                                     const inference_options& options = {});
std::vector<image_detections> detect(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                     std::size_t count, const inference_options& options = {});
focal::coco_eval_result evaluate(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                 std::size_t count, const inference_options& options = {});

// Sharded over the ranks of `group` (null or one rank: the above): the images are cut into the
// one-rank run's batches, rank r runs batches r, r + W, ..., and rank 0 gathers the detections in
// the one-rank order, so they and the COCO numbers are exactly the one-rank run's. detect returns
// them on rank 0 (nothing elsewhere); evaluate returns the full result on rank 0 and its stats on
// every rank. Collective.
std::vector<image_detections> detect(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                     std::size_t count, const inference_options& options, distributed::process_group* group);
focal::coco_eval_result evaluate(const batch_detector& detector, const model::model_config& config, const data::dataset& data,
                                 std::size_t count, const inference_options& options, distributed::process_group* group);

// COCO detections (category_id = label + 1, bbox x y w h), as data::make_coco_ground_truth names them.
std::vector<focal::coco_detection> to_coco(const std::vector<image_detections>& detections);

// AP, AP50, AP75, ... of the model on samples [0, count) of `data`.
focal::coco_eval_result evaluate(model::retinanet_model<float>& net, const data::dataset& data, std::size_t count,
                                 const inference_options& options = {});

}  // namespace retinanet::train
