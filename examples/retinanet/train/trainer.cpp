#include "trainer.hpp"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "batch.hpp"
#include "checkpoint.hpp"
#include "data/augment.hpp"
#include "data/prefetch.hpp"
#include "data/random.hpp"
#include "evaluate.hpp"
#include "io/npz.hpp"
#include "step.hpp"

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
    constexpr const char* where = "train";
    focal::detail::require(o.iterations > 0 || o.minutes > 0, where, "options.iterations or options.minutes", "positive", "neither");
    focal::detail::require(o.batch > 0, where, "options.batch", "positive", o.batch);
    std::ostream& log = o.log ? *o.log : std::cout;
    const auto& config = net.config();

    run_state state;
    state.config_name = config.name;
    state.total_iterations = o.iterations;
    std::vector<std::vector<float>> velocity;
    const auto checkpoint_file = o.output.empty() ? std::filesystem::path{} : o.output / "checkpoint.npz";
    if (!checkpoint_file.empty() && io::remove_stale_temporaries(checkpoint_file) > 0)
        log << "removed the partial checkpoint a killed run left in " << o.output.string() << "\n";
    if (o.resume && !checkpoint_file.empty() && std::filesystem::exists(checkpoint_file)) {
        load_checkpoint(checkpoint_file, net.parameters(), &velocity, &state);
        focal::detail::require(state.config_name == config.name, where, "the checkpoint's configuration", "'" + config.name + "'",
                               "'" + state.config_name + "'");
        log << "resuming " << checkpoint_file.string() << " at iteration " << state.iteration << " of " << state.total_iterations << "\n";
    }
    engine.begin(velocity, state.loss_normalizer);
    // The engine's state into the host model, then (when checkpointing) onto disk.
    auto save = [&] {
        state.loss_normalizer = engine.to_host(velocity);
        if (!checkpoint_file.empty()) save_checkpoint(checkpoint_file, net.parameters(), velocity, state);
    };

    data::prefetcher<batch> batches(
        [&](std::size_t step) {
            batch b = training_batch(train_data, config, o, step);
            engine.prepare(b);
            return b;
        },
        static_cast<std::size_t>(state.iteration), 3);
    const auto start = clock_type::now();
    auto window_start = start;
    double window_loss = 0, window_cls = 0, window_box = 0, last_loss = 0;
    std::int64_t window_steps = 0, done = 0;
    bool budget_fixed = state.total_iterations > 0;
    auto budget_mark = start;
    std::int64_t budget_mark_steps = 0;
    const std::int64_t first_iteration = state.iteration;
    train_result result;
    while (state.total_iterations == 0 || state.iteration < state.total_iterations) {
        if (stop && stop()) break;
        engine.gradients(batches.next());

        if (o.minutes > 0 && !budget_fixed && done >= 10 && (done == 10 || done % 50 == 0)) {
            // Time budget: the schedule's length is the iterations that fit in the remaining time
            // at the speed measured since step 10 (data included; the first steps warm caches and
            // the allocator). Re-planned every 50 steps until 60% of the plan, well before any
            // learning-rate drop, then fixed.
            const auto now = clock_type::now();
            if (done == 10) budget_mark = now, budget_mark_steps = done;
            const double per_step = done == 10 ? std::chrono::duration<double>(now - start).count() / 10.0
                                               : std::chrono::duration<double>(now - budget_mark).count() /
                                                     static_cast<double>(done - budget_mark_steps);
            const double remaining = o.minutes * 60.0 - std::chrono::duration<double>(now - start).count();
            state.total_iterations = std::max<std::int64_t>(state.iteration + 1, state.iteration + static_cast<std::int64_t>(remaining / per_step));
            budget_fixed = state.iteration >= state.total_iterations * 6 / 10;
            if (done == 60 || budget_fixed)
                log << "time budget " << o.minutes << " min at " << std::fixed << std::setprecision(3) << per_step
                    << " s/step: " << state.total_iterations << " iterations" << (budget_fixed ? " (final)" : "") << std::endl;
        }
        const std::int64_t total_for_lr = std::max<std::int64_t>(state.total_iterations, 1);
        const double lr = o.schedule.at(state.iteration, total_for_lr);
        const auto [value, grad_norm] = engine.update(lr);
        const double total_loss = value.classification + value.box;
        focal::detail::require(std::isfinite(total_loss) && std::isfinite(grad_norm), where, "the loss", "finite (training diverged)",
                               focal::detail::concat(total_loss, " at iteration ", state.iteration, ", gradient norm ", grad_norm,
                                                     ": lower the learning rate or raise warmup"));
        ++state.iteration;
        ++done;
        window_loss += total_loss, window_cls += value.classification, window_box += value.box;
        ++window_steps;

        const bool last = state.total_iterations > 0 && state.iteration >= state.total_iterations;
        if (state.iteration % o.log_every == 0 || last) {
            const auto now = clock_type::now();
            const double window_s = std::chrono::duration<double>(now - window_start).count();
            const double ips = static_cast<double>(window_steps * o.batch) / std::max(window_s, 1e-9);
            const double eta = static_cast<double>(state.total_iterations - state.iteration) * window_s / static_cast<double>(window_steps);
            last_loss = window_loss / static_cast<double>(window_steps);
            log << "iter " << std::setw(6) << state.iteration << "/" << state.total_iterations << std::fixed << std::setprecision(4)
                << "  loss " << last_loss << " (cls " << window_cls / static_cast<double>(window_steps) << ", box "
                << window_box / static_cast<double>(window_steps) << ")  lr " << std::setprecision(5) << lr << std::setprecision(1)
                << "  " << ips << " img/s  ETA " << duration_text(eta) << std::endl;
            window_loss = window_cls = window_box = 0;
            window_steps = 0;
            window_start = now;
        }
        if (!checkpoint_file.empty() && o.checkpoint_every > 0 && state.iteration % o.checkpoint_every == 0 && !last) save();
        if (eval_data && o.eval_every > 0 && state.iteration % o.eval_every == 0 && !last) {
            const auto r = engine.evaluate(*eval_data, o.eval_images);
            log << "eval at " << state.iteration << ": AP " << std::setprecision(4) << r.stats[0] << "  AP50 " << r.stats[1] << "  AP75 "
                << r.stats[2] << std::endl;
        }
        if (last) break;
    }
    save();
    result.iterations = state.iteration - first_iteration;
    result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    result.images_per_second = static_cast<double>(result.iterations * o.batch) / std::max(result.seconds, 1e-9);
    result.final_loss = window_steps ? window_loss / static_cast<double>(window_steps) : last_loss;
    return result;
}

}  // namespace retinanet::train
