// The CPU training engine: forward_backward on the layers' threads, train::sgd on the host
// parameters. On W ranks its gradients are averaged by a distributed::gradient_reducer fed by
// the layers' gradient signals (model/gradient_signal.hpp) while backward runs, and the
// loss normalizer's counts are summed over the ranks (data_parallel_options::global_positives).
#include <memory>
#include <optional>

#include "distributed/gradient_reducer.hpp"
#include "evaluate.hpp"
#include "trainer.hpp"

namespace retinanet::train {
namespace {

class cpu_engine final : public training_engine {
public:
    cpu_engine(model::retinanet_model<float>& net, const train_options& o)
        : net_(net), options_(o), loss_(make_detection_loss(o)), group_(o.parallel.group) {
        if (reduces_gradients(o.parallel)) join_ranks();
    }
    ~cpu_engine() override { net_.on_gradients_ready({}); }

    void begin(const std::vector<std::vector<float>>& velocity, double loss_normalizer) override {
        velocity_ = velocity;
        loss_state_.ema = loss_normalizer / normalizer_share(options_.parallel);
    }
    void gradients(const batch& b) override {
        net_.zero_grad();
        if (reducer_) reducer_->begin_step();
        value_ = forward_backward(net_, b.images, b.boxes, b.labels, loss_, loss_state_, anchors_);
    }
    step_result update(double lr) override {
        if (reducer_) {
            reducer_->finish();
            // The ranks' losses are their shares of the global batch's: their mean is its loss.
            double losses[2] = {value_.classification, value_.box};
            group_->sum(std::span<double>(losses));
            value_.classification = losses[0] / group_->size(), value_.box = losses[1] / group_->size();
        }
        return {value_, options_.optimizer.step(net_.parameters(), velocity_, lr)};
    }
    double to_host(std::vector<std::vector<float>>& velocity) override {
        velocity = velocity_;
        return loss_state_.ema * normalizer_share(options_.parallel);
    }
    focal::coco_eval_result evaluate(const data::dataset& data, std::size_t images) override {
        return train::evaluate(make_cpu_detector(net_, inference_), net_.config(), data, images, inference_, group_);
    }
    const distributed::gradient_reducer* reducer() const noexcept override { return reducer_ ? &*reducer_ : nullptr; }

private:
    // The gradients in the order backward completes them (the parameters' reverse creation order),
    // trainable ones only; each layer's signal marks its own.
    void join_ranks() {
        auto& params = net_.parameters();
        std::vector<std::span<float>> gradients;
        slot_.assign(params.size(), none);
        for (std::size_t i = params.size(); i-- > 0;) {
            if (!params[i]->trainable) continue;
            slot_[i] = gradients.size();
            gradients.emplace_back(params[i]->grad);
        }
        reducer_.emplace(*group_, std::move(gradients),
                         distributed::reducer_options{options_.parallel.bucket_bytes, options_.parallel.overlap});
        net_.on_gradients_ready([this](std::size_t first, std::size_t count) {
            for (std::size_t i = first; i < first + count; ++i)
                if (slot_[i] != none) reducer_->ready(slot_[i]);
        });
        if (options_.parallel.global_positives) {
            loss_state_.processes = group_->size();
            loss_state_.sum_counts = [this](std::span<std::int64_t, 2> counts) { group_->sum(std::span<std::int64_t>(counts)); };
        }
    }

    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    model::retinanet_model<float>& net_;
    const train_options& options_;
    detection_loss loss_;
    focal::retinanet_loss_state loss_state_;
    anchor_cache anchors_;
    std::vector<std::vector<float>> velocity_;
    focal::retinanet_loss_value value_;
    inference_options inference_;
    distributed::process_group* group_;
    std::optional<distributed::gradient_reducer> reducer_;
    std::vector<std::size_t> slot_;  // parameter -> reducer gradient (none: frozen)
};

}  // namespace

std::unique_ptr<training_engine> make_cpu_engine(model::retinanet_model<float>& net, const train_options& o) {
    if (o.threads > 0) cpu::set_threads(o.threads);
    return std::make_unique<cpu_engine>(net, o);
}

}  // namespace retinanet::train
