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
#include "distributed/gradient_reducer.hpp"
#include "evaluate.hpp"
#include "io/npz.hpp"
#include "step.hpp"
#include "support/check.hpp"
#include "support/discarded_output.hpp"

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

// This rank's share of step `step`'s batch: of stream samples step*B .. step*B + B - 1, those
// rank_samples() gives it (all of them on one rank).
batch training_batch(const data::dataset& source, const model::model_config& config, const train_options& o, std::size_t step) {
    std::vector<data::sample> samples;
    for (const std::size_t index : rank_samples(step, o.batch, world_rank(o.parallel), world_size(o.parallel)))
        samples.push_back(training_sample(source, config, o, index % source.size()));
    return make_batch(samples, config);
}

// What every rank must agree on (data_parallel.hpp): the model, the data and every option that
// changes the training; not threads, output or the log.
std::string run_fingerprint(model::retinanet_model<float>& net, const data::dataset& data, const train_options& o) {
    std::ostringstream f;
    f << std::setprecision(17) << "config=" << net.config().name << "\nparameters=";
    for (const auto* p : net.parameters()) {
        f << p->name << "[";
        for (const auto d : p->shape) f << d << ",";
        f << "]" << (p->trainable ? "" : "frozen") << ";";
    }
    f << "\ntraining images=" << data.size() << "\nclasses=" << data.class_names().size() << "\niterations=" << o.iterations
      << "\nminutes=" << o.minutes << "\nbatch=" << o.batch << "\nseed=" << o.seed << "\nlr=" << o.schedule.base_lr << ","
      << o.schedule.warmup_iterations << "," << o.schedule.warmup_factor << "," << static_cast<int>(o.schedule.decay) << ","
      << o.schedule.gamma << "," << o.schedule.final_factor << ",";
    for (const double step : o.schedule.steps) f << step << ";";
    f << "\nsgd=" << o.optimizer.momentum << "," << o.optimizer.weight_decay << "," << o.optimizer.clip_norm
      << "\nloss=" << static_cast<int>(o.normalizer) << "," << o.focal_alpha << "," << o.focal_gamma << "," << o.focal_loss << ","
      << o.smooth_l1_beta << "\naugmentation=" << o.flip_probability << "," << o.min_scale << "," << o.max_scale
      << "\nresume=" << o.resume << "\ncheckpoint every=" << o.checkpoint_every << "\nlog every=" << o.log_every
      << "\neval=" << o.eval_every << "," << o.eval_images << "\nranks=" << world_size(o.parallel)
      << "\nreduction=" << o.parallel.bucket_bytes << "," << o.parallel.overlap << "," << o.parallel.global_positives << ","
      << o.parallel.check_replicas_every << "\n";
    return f.str();
}

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
    // state.total_iterations when due; `agree` replaces the plan by rank 0's (every rank plans at
    // the same steps).
    template <class Agree>
    void plan(run_state& state, std::int64_t done, std::ostream& log, Agree&& agree) {
        if (!(minutes_ > 0 && !fixed_ && done >= 10 && (done == 10 || done % 50 == 0))) return;
        const auto now = clock_type::now();
        if (done == 10) mark_ = now, mark_steps_ = done;
        const double per_step = done == 10 ? seconds(start_, now) / 10.0 : seconds(mark_, now) / static_cast<double>(done - mark_steps_);
        const double remaining = minutes_ * 60.0 - seconds(start_, now);
        const auto fitting = static_cast<std::int64_t>(remaining / per_step);
        state.total_iterations = std::max<std::int64_t>(state.iteration + 1, state.iteration + fitting);
        agree(state.total_iterations);
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
    void join_ranks();
    void resume();
    double step(data::prefetcher<batch>& batches);
    bool stop_requested(const std::function<bool()>& stop);
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
    distributed::process_group* group_;  // null: this process alone
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
    : net_(net), engine_(engine), train_data_(train_data), eval_data_(eval_data), o_(o),
      group_(world_size(o.parallel) > 1 ? o.parallel.group : nullptr),
      log_(world_rank(o.parallel) != 0 ? discarded_output() : o.log ? *o.log : std::cout) {
    require(o.iterations > 0 || o.minutes > 0, where, "options.iterations or options.minutes", "positive", "neither");
    require(o.batch > 0, where, "options.batch", "positive", o.batch);
    require(o.batch % world_size(o.parallel) == 0, where, "options.batch (the global batch)",
            concat("divisible by the ", world_size(o.parallel), " ranks"), o.batch);
    state_.config_name = net.config().name;
    state_.total_iterations = o.iterations;
    if (!o.output.empty()) checkpoint_file_ = o.output / "checkpoint.npz";
}

// Resume state, batches one step ahead from it, then steps until the schedule's end (or `stop`):
// each followed by its progress line, checkpoint and evaluation when due; a checkpoint at the end.
train_result training_run::run(const std::function<bool()>& stop) {
    join_ranks();
    resume();
    if (group_) broadcast_start(*group_, net_.parameters(), velocity_, state_);
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
        if (stop_requested(stop)) break;
        const double lr = step(batches);
        const bool last = state_.total_iterations > 0 && state_.iteration >= state_.total_iterations;
        if (state_.iteration % o_.log_every == 0 || last) report_progress(lr);
        if (!checkpoint_file_.empty() && due(o_.checkpoint_every, last)) save();
        if (eval_data_ && due(o_.eval_every, last)) evaluate();
        if (group_ && due(o_.parallel.check_replicas_every, false)) {
            state_.loss_normalizer = engine_.to_host(velocity_);  // the engine's parameters into the host model
            require_identical_replicas(*group_, net_.parameters(), state_.iteration);
        }
        if (last) break;
    }
    save();
    return result();
}

// On several ranks: every rank started like rank 0; rank 0 alone reads and writes checkpoints.
void training_run::join_ranks() {
    if (!group_) return;
    require_same_run(*group_, run_fingerprint(net_, train_data_, o_));
    if (!group_->is_root()) checkpoint_file_.clear();
    log_ << "data parallel: " << group_->describe() << ", " << o_.batch / group_->size() << " images per rank and step\n";
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
    budget_->plan(state_, done_, log_, [this](std::int64_t& total) {
        if (group_) distributed::broadcast_value(*group_, total);
    });
    const std::int64_t total_for_lr = std::max<std::int64_t>(state_.total_iterations, 1);
    const double lr = o_.schedule.at(state_.iteration, total_for_lr);
    const step_result result = engine_.update(lr);
    const auto& [value, grad_norm] = result;
    const double total_loss = value.classification + value.box;
    if (!std::isfinite(total_loss) || !std::isfinite(grad_norm))
        fail(where, "the loss", "finite (training diverged)",
             concat(total_loss, " at iteration ", state_.iteration, ", gradient norm ", grad_norm,
                    ": lower the learning rate or raise warmup"));
    ++state_.iteration;
    ++done_;
    window_.add(total_loss, value);
    if (o_.on_step) o_.on_step(state_.iteration, result);
    return lr;
}

// Whether `stop` asks to end the run, on any rank.
bool training_run::stop_requested(const std::function<bool()>& stop) {
    if (!stop) return false;
    const bool asked = stop();
    return group_ ? distributed::any_rank(*group_, asked) : asked;
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
    if (const auto* reducer = engine_.reducer()) {
        r.reduced_bytes_per_step = static_cast<double>(reducer->floats_per_step() * sizeof(float));
        r.reduction_seconds = reducer->communication_seconds();
        r.reduction_exposed_seconds = reducer->exposed_seconds();
    }
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
