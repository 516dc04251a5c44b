// Inference over a dataset and COCO evaluation with focal's evaluator: images are resized for the
// model, batched, run without gradients, post-processed by focal::postprocess_batch (per-level
// top-k, class-aware NMS, 100 detections) and mapped back to the original pixels.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <focal/eval/coco_result.hpp>
#include <focal/eval/coco_types.hpp>
#include <focal/postprocess/retinanet_postprocess.hpp>

#include "data/sample.hpp"
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

// Detections for samples [0, count) of `data` (count 0: all).
std::vector<image_detections> detect(model::retinanet_model<float>& net, const data::dataset& data, std::size_t count,
                                     const inference_options& options = {});
// The same for samples already in memory.
std::vector<image_detections> detect(model::retinanet_model<float>& net, std::vector<data::sample> samples,
                                     const inference_options& options = {});

// COCO detections (category_id = label + 1, bbox x y w h), as data::make_coco_ground_truth names them.
std::vector<focal::coco_detection> to_coco(const std::vector<image_detections>& detections);

// AP, AP50, AP75, ... of the model on samples [0, count) of `data`.
focal::coco_eval_result evaluate(model::retinanet_model<float>& net, const data::dataset& data, std::size_t count,
                                 const inference_options& options = {});

}  // namespace retinanet::train
