// The training loop: batches generated one step ahead on a background thread (sample i of the
// stream and its augmentation are pure functions of the seed and i, so runs are reproducible and
// resume exactly), focal's RetinaNet loss, backward, SGD; a progress line, periodic evaluation
// and atomic checkpoints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include <focal/retinanet/loss.hpp>

#include <focal/eval/coco_result.hpp>

#include "batch.hpp"
#include "data/sample.hpp"
#include "data_parallel.hpp"
#include "model/retinanet_model.hpp"
#include "optimizer.hpp"
#include "step.hpp"

namespace retinanet::distributed {
class gradient_reducer;
}

namespace retinanet::train {

// One step's loss (of the global batch: the ranks' mean) and gradient norm.
struct step_result {
    focal::retinanet_loss_value loss;
    double grad_norm = 0;  // before clipping
};

// The training's options. Their defaults are retinanet_train's, stated only here: its help text
// and parsing read them (apps/train_main.cpp; the demo and tiny configurations change a few).
struct train_options {
    std::int64_t iterations = 0;  // the schedule's length; 0: derived from `minutes`
    double minutes = 0;           // time budget (the first steps' speed sets the iteration count)
    int batch = 16;
    int threads = 0;              // 0: all hardware threads
    std::uint64_t seed = 1;
    lr_schedule schedule{};
    sgd optimizer{};
    focal::loss_normalizer normalizer = focal::loss_normalizer::batch_ema;
    float focal_alpha = 0.25f, focal_gamma = 2.0f;
    bool focal_loss = true;  // false: alpha-balanced cross entropy (the ablation's baseline)
    float smooth_l1_beta = 0.1f;
    float flip_probability = 0.5f;
    float min_scale = 0.8f, max_scale = 1.25f;  // scale jitter (log-uniform), on the model's canvas
    std::filesystem::path output;               // checkpoints (empty: none)
    bool resume = false;                         // continue from output/checkpoint.npz when present
    std::int64_t checkpoint_every = 200;         // iterations between checkpoints (0: at the end only)
    std::int64_t log_every = 20;
    std::int64_t eval_every = 0;  // 0: only at the end (when an eval set is given)
    std::size_t eval_images = 500;
    std::ostream* log = nullptr;  // progress lines (nullptr: std::cout; rank 0 only)
    data_parallel_options parallel{};  // several ranks (data_parallel.hpp); `batch` is then the global batch
    // Called on every rank after each update with the iterations done and the step's result.
    std::function<void(std::int64_t iteration, const step_result&)> on_step;
};

struct train_result {
    std::int64_t iterations = 0;
    double seconds = 0;
    double images_per_second = 0;
    double final_loss = 0;  // mean of the last log window
    // Several ranks: the gradients reduced per step, and the seconds the reduction took and the
    // part of them the training waited for (not hidden behind backward), over the run.
    double reduced_bytes_per_step = 0, reduction_seconds = 0, reduction_exposed_seconds = 0;
};

// What runs the training steps: the CPU (train() below) or a GPU (backend/cuda/cuda_training.hpp).
// The loop (schedule, time budget, progress, checkpoints, evaluation) is the same for every engine.
class training_engine {
public:
    virtual ~training_engine() = default;
    // The run's start: the host model's parameters, the optimizer's velocities (empty: zeros) and
    // the loss normalizer's running value (focal::retinanet_loss_state::ema).
    virtual void begin(const std::vector<std::vector<float>>& velocity, double loss_normalizer) = 0;
    // Called on the data thread for each batch as it is made (the CUDA engine starts its copy).
    virtual void prepare(batch&) {}
    // The gradients of the batch's loss (from zero). May return before they are computed.
    virtual void gradients(const batch& b) = 0;
    // The optimizer's update at `lr`; returns the step's loss and gradient norm (non-finite: the
    // update was skipped).
    virtual step_result update(double lr) = 0;
    // The parameters into the host model and the velocities into `velocity` (for checkpoints, and
    // at the end of train()); returns the loss normalizer's running value.
    virtual double to_host(std::vector<std::vector<float>>& velocity) = 0;
    // COCO evaluation of the engine's current parameters (sharded over the ranks: the full result
    // on rank 0, its stats on every rank).
    virtual focal::coco_eval_result evaluate(const data::dataset& data, std::size_t images) = 0;
    // The gradient reducer on several ranks (its timings), else null.
    virtual const distributed::gradient_reducer* reducer() const noexcept { return nullptr; }
};

// The CPU engine (cpu_engine.cpp): forward_backward on the layers' threads (options.threads),
// train::sgd on the host parameters, gradients averaged over options.parallel's ranks. `net` and
// `options` must outlive it.
std::unique_ptr<training_engine> make_cpu_engine(model::retinanet_model<float>& net, const train_options& options);

// The loss the trainer minimizes: torchvision's RetinaNet loss with the options' focal and box
// settings and normalizer.
detection_loss make_detection_loss(const train_options& options);

// Sample `index` of the training stream as the trainer sees it: resized for the model, flipped and
// scale-jittered by draws that are a pure function of (options.seed, index).
data::sample training_sample(const data::dataset& source, const model::model_config& config, const train_options& options,
                             std::size_t index);

// Trains `net` on `train_data` (typically data::fmnist_det_train); evaluates on `eval_data` when
// given. Stops early, keeping a consistent checkpoint, when `stop` returns true (on any rank).
// On several ranks every rank calls it with the same arguments (checked).
train_result train(model::retinanet_model<float>& net, const data::dataset& train_data, const data::dataset* eval_data,
                   const train_options& options, const std::function<bool()>& stop = {});
// The same loop on another engine; `net` is the host model the engine mirrors (its checkpoints).
// On return `net` holds the trained parameters (engine.to_host).
train_result train(model::retinanet_model<float>& net, training_engine& engine, const data::dataset& train_data,
                   const data::dataset* eval_data, const train_options& options, const std::function<bool()>& stop = {});

}  // namespace retinanet::train
