#include "trainer.hpp"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "batch.hpp"
#include "checkpoint.hpp"
#include "data/augment.hpp"
#include "data/prefetch.hpp"
#include "data/random.hpp"
#include "evaluate.hpp"
#include "io/npz.hpp"
#include "step.hpp"
#include "support/check.hpp"

namespace retinanet::train {
namespace {

using clock_type = std::chrono::steady_clock;

std::string duration_text(double seconds) {
    const auto s = static_cast<long>(std::max(0.0, seconds));
    std::ostringstream out;
    if (s >= 3600) out << s / 3600 << "h";
    out << std::setw(s >= 3600 ? 2 : 1) << std::setfill('0') << (s / 60) % 60 << "m" << std::setw(2) << s % 60 << "s";
    return out.str();
}

// Step `step`'s batch: stream samples step*B .. step*B + B - 1.
batch training_batch(const data::dataset& source, const model::model_config& config, const train_options& o, std::size_t step) {
    std::vector<data::sample> samples;
    for (int b = 0; b < o.batch; ++b) {
        const std::size_t index = (step * static_cast<std::size_t>(o.batch) + static_cast<std::size_t>(b)) % source.size();
        samples.push_back(training_sample(source, config, o, index));
    }
    return make_batch(samples, config);
}

// The CPU engine: forward_backward on the layers' threads, train::sgd on the host parameters.
class cpu_engine final : public training_engine {
public:
    cpu_engine(model::retinanet_model<float>& net, const train_options& o) : net_(net), options_(o), loss_(make_detection_loss(o)) {}
    void begin(const std::vector<std::vector<float>>& velocity, double loss_normalizer) override {
        velocity_ = velocity;
        loss_state_.ema = loss_normalizer;
    }
    void gradients(const batch& b) override {
        net_.zero_grad();
        value_ = forward_backward(net_, b.images, b.boxes, b.labels, loss_, loss_state_, anchors_);
    }
    step_result update(double lr) override { return {value_, options_.optimizer.step(net_.parameters(), velocity_, lr)}; }
    double to_host(std::vector<std::vector<float>>& velocity) override {
        velocity = velocity_;
        return loss_state_.ema;
    }
    focal::coco_eval_result evaluate(const data::dataset& data, std::size_t images) override { return train::evaluate(net_, data, images); }

private:
    model::retinanet_model<float>& net_;
    const train_options& options_;
    detection_loss loss_;
    focal::retinanet_loss_state loss_state_;
    anchor_cache anchors_;
    std::vector<std::vector<float>> velocity_;
    focal::retinanet_loss_value value_;
};

constexpr const char* where = "train";

// The time budget (options.minutes): the schedule's length is the iterations that fit in the
// remaining time at the speed measured since step 10 (data included; the first steps warm caches
// and the allocator). Re-planned every 50 steps until 60% of the plan, well before any
// learning-rate drop, then fixed.
class time_budget {
public:
    // `fixed`: the schedule's length is known (given, or resumed) and is never re-planned.
    time_budget(double minutes, bool fixed, clock_type::time_point start)
        : minutes_(minutes), fixed_(fixed), start_(start), mark_(start) {}

    // Before the update of the run's step `done` (counted from 0 in this run): re-plans
    // state.total_iterations when due.
    void plan(run_state& state, std::int64_t done, std::ostream& log) {
        if (!(minutes_ > 0 && !fixed_ && done >= 10 && (done == 10 || done % 50 == 0))) return;
        const auto now = clock_type::now();
        if (done == 10) mark_ = now, mark_steps_ = done;
        const double per_step = done == 10 ? seconds(start_, now) / 10.0 : seconds(mark_, now) / static_cast<double>(done - mark_steps_);
        const double remaining = minutes_ * 60.0 - seconds(start_, now);
        const auto fitting = static_cast<std::int64_t>(remaining / per_step);
        state.total_iterations = std::max<std::int64_t>(state.iteration + 1, state.iteration + fitting);
        fixed_ = state.iteration >= state.total_iterations * 6 / 10;
        if (done == 60 || fixed_)
            log << "time budget " << minutes_ << " min at " << std::fixed << std::setprecision(3) << per_step
                << " s/step: " << state.total_iterations << " iterations" << (fixed_ ? " (final)" : "") << std::endl;
    }

private:
    static double seconds(clock_type::time_point from, clock_type::time_point to) {
        return std::chrono::duration<double>(to - from).count();
    }

    double minutes_;
    bool fixed_;
    clock_type::time_point start_, mark_;  // the run's start; the speed's (step 10)
    std::int64_t mark_steps_ = 0;
};

// The steps since the last progress line: their summed losses and when the window began.
struct loss_window {
    clock_type::time_point start;
    double loss = 0, classification = 0, box = 0;
    std::int64_t steps = 0;

    void add(double total, const focal::retinanet_loss_value& value) {
        loss += total, classification += value.classification, box += value.box;
        ++steps;
    }
    double mean(double sum) const { return sum / static_cast<double>(steps); }
    void restart(clock_type::time_point now) {
        loss = classification = box = 0;
        steps = 0;
        start = now;
    }
};

// One call of train(): the run's state, and the loop's steps in the order it takes them.
class training_run {
public:
    training_run(model::retinanet_model<float>& net, training_engine& engine, const data::dataset& train_data,
                 const data::dataset* eval_data, const train_options& o);
    train_result run(const std::function<bool()>& stop);

private:
    void resume();
    double step(data::prefetcher<batch>& batches);
    bool due(std::int64_t every, bool last) const { return every > 0 && state_.iteration % every == 0 && !last; }
    void report_progress(double lr);
    void save();
    void evaluate();
    train_result result() const;

    model::retinanet_model<float>& net_;
    training_engine& engine_;
    const data::dataset& train_data_;
    const data::dataset* eval_data_;
    const train_options& o_;
    std::ostream& log_;
    std::filesystem::path checkpoint_file_;  // empty: no checkpoints
    run_state state_;
    std::vector<std::vector<float>> velocity_;
    clock_type::time_point start_;
    std::optional<time_budget> budget_;
    loss_window window_;
    double last_loss_ = 0;              // the mean loss of the last progress line
    std::int64_t first_iteration_ = 0;  // the iteration this run started at
    std::int64_t done_ = 0;             // the steps this run took
};

training_run::training_run(model::retinanet_model<float>& net, training_engine& engine, const data::dataset& train_data,
                           const data::dataset* eval_data, const train_options& o)
    : net_(net), engine_(engine), train_data_(train_data), eval_data_(eval_data), o_(o), log_(o.log ? *o.log : std::cout) {
    require(o.iterations > 0 || o.minutes > 0, where, "options.iterations or options.minutes", "positive", "neither");
    require(o.batch > 0, where, "options.batch", "positive", o.batch);
    state_.config_name = net.config().name;
    state_.total_iterations = o.iterations;
    if (!o.output.empty()) checkpoint_file_ = o.output / "checkpoint.npz";
}

// Resume state, batches one step ahead from it, then steps until the schedule's end (or `stop`):
// each followed by its progress line, checkpoint and evaluation when due; a checkpoint at the end.
train_result training_run::run(const std::function<bool()>& stop) {
    resume();
    engine_.begin(velocity_, state_.loss_normalizer);
    const auto& config = net_.config();
    data::prefetcher<batch> batches(
        [this, &config](std::size_t step) {
            batch b = training_batch(train_data_, config, o_, step);
            engine_.prepare(b);
            return b;
        },
        static_cast<std::size_t>(state_.iteration), 3);
    start_ = window_.start = clock_type::now();
    budget_.emplace(o_.minutes, state_.total_iterations > 0, start_);
    first_iteration_ = state_.iteration;
    while (state_.total_iterations == 0 || state_.iteration < state_.total_iterations) {
        if (stop && stop()) break;
        const double lr = step(batches);
        const bool last = state_.total_iterations > 0 && state_.iteration >= state_.total_iterations;
        if (state_.iteration % o_.log_every == 0 || last) report_progress(lr);
        if (!checkpoint_file_.empty() && due(o_.checkpoint_every, last)) save();
        if (eval_data_ && due(o_.eval_every, last)) evaluate();
        if (last) break;
    }
    save();
    return result();
}

// Removes the partial checkpoint a killed run left; with options.resume, continues from the
// checkpoint when there is one: its parameters, velocities and run state (its configuration must
// be the model's).
void training_run::resume() {
    if (checkpoint_file_.empty()) return;
    if (io::remove_stale_temporaries(checkpoint_file_) > 0)
        log_ << "removed the partial checkpoint a killed run left in " << o_.output.string() << "\n";
    if (!o_.resume || !std::filesystem::exists(checkpoint_file_)) return;
    load_checkpoint(checkpoint_file_, net_.parameters(), &velocity_, &state_);
    const std::string& name = net_.config().name;
    require(state_.config_name == name, where, "the checkpoint's configuration", "'" + name + "'", "'" + state_.config_name + "'");
    log_ << "resuming " << checkpoint_file_.string() << " at iteration " << state_.iteration << " of " << state_.total_iterations << "\n";
}

// One iteration: the next batch's gradients, the time budget's plan, the update at the schedule's
// rate (a non-finite loss or gradient norm stops the run: training diverged). Returns the rate.
double training_run::step(data::prefetcher<batch>& batches) {
    engine_.gradients(batches.next());
    budget_->plan(state_, done_, log_);
    const std::int64_t total_for_lr = std::max<std::int64_t>(state_.total_iterations, 1);
    const double lr = o_.schedule.at(state_.iteration, total_for_lr);
    const auto [value, grad_norm] = engine_.update(lr);
    const double total_loss = value.classification + value.box;
    if (!std::isfinite(total_loss) || !std::isfinite(grad_norm))
        fail(where, "the loss", "finite (training diverged)",
             concat(total_loss, " at iteration ", state_.iteration, ", gradient norm ", grad_norm,
                    ": lower the learning rate or raise warmup"));
    ++state_.iteration;
    ++done_;
    window_.add(total_loss, value);
    return lr;
}

// The progress line of the steps since the last one: their mean losses, the rate, the speed and
// the time left.
void training_run::report_progress(double lr) {
    const auto now = clock_type::now();
    const double window_s = std::chrono::duration<double>(now - window_.start).count();
    const double ips = static_cast<double>(window_.steps * o_.batch) / std::max(window_s, 1e-9);
    const double eta = static_cast<double>(state_.total_iterations - state_.iteration) * window_s / static_cast<double>(window_.steps);
    last_loss_ = window_.mean(window_.loss);
    log_ << "iter " << std::setw(6) << state_.iteration << "/" << state_.total_iterations << std::fixed << std::setprecision(4)
         << "  loss " << last_loss_ << " (cls " << window_.mean(window_.classification) << ", box " << window_.mean(window_.box)
         << ")  lr " << std::setprecision(5) << lr << std::setprecision(1) << "  " << ips << " img/s  ETA " << duration_text(eta)
         << std::endl;
    window_.restart(now);
}

// The engine's state into the host model, then (when checkpointing) onto disk.
void training_run::save() {
    state_.loss_normalizer = engine_.to_host(velocity_);
    if (!checkpoint_file_.empty()) save_checkpoint(checkpoint_file_, net_.parameters(), velocity_, state_);
}

void training_run::evaluate() {
    const auto r = engine_.evaluate(*eval_data_, o_.eval_images);
    log_ << "eval at " << state_.iteration << ": AP " << std::setprecision(4) << r.stats[0] << "  AP50 " << r.stats[1] << "  AP75 "
         << r.stats[2] << std::endl;
}

train_result training_run::result() const {
    train_result r;
    r.iterations = state_.iteration - first_iteration_;
    r.seconds = std::chrono::duration<double>(clock_type::now() - start_).count();
    r.images_per_second = static_cast<double>(r.iterations * o_.batch) / std::max(r.seconds, 1e-9);
    r.final_loss = window_.steps ? window_.mean(window_.loss) : last_loss_;
    return r;
}

}  // namespace

data::sample training_sample(const data::dataset& source, const model::model_config& config, const train_options& o, std::size_t index) {
    data::sample s = source.get(index);
    resize_for_model(s, config);
    // Augmentation draws: their own stream ("aug"), never the generator's.
    data::random rng(data::seed_for(o.seed, 0x617567ULL, index));
    if (rng.uniform() < o.flip_probability) data::horizontal_flip(s);
    if (o.max_scale > o.min_scale) {
        data::scale_jitter_options j;
        const double scale = rng.log_uniform(o.min_scale, o.max_scale);
        j.crop_x = static_cast<float>(rng.uniform());
        j.crop_y = static_cast<float>(rng.uniform());
        s = data::scale_jitter(s, static_cast<float>(scale), j);
    }
    return s;
}

detection_loss make_detection_loss(const train_options& o) {
    auto loss = detection_loss::torchvision();
    loss.box.beta = o.smooth_l1_beta;
    loss.normalizer = o.normalizer;
    loss.classification.alpha = o.focal_alpha;
    loss.classification.gamma = o.focal_loss ? o.focal_gamma : 0.0f;
    return loss;
}

std::unique_ptr<training_engine> make_cpu_engine(model::retinanet_model<float>& net, const train_options& o) {
    if (o.threads > 0) cpu::set_threads(o.threads);
    return std::make_unique<cpu_engine>(net, o);
}

train_result train(model::retinanet_model<float>& net, const data::dataset& train_data, const data::dataset* eval_data,
                   const train_options& o, const std::function<bool()>& stop) {
    const auto engine = make_cpu_engine(net, o);
    return train(net, *engine, train_data, eval_data, o, stop);
}

train_result train(model::retinanet_model<float>& net, training_engine& engine, const data::dataset& train_data,
                   const data::dataset* eval_data, const train_options& o, const std::function<bool()>& stop) {
    return training_run(net, engine, train_data, eval_data, o).run(stop);
}

}  // namespace retinanet::train
