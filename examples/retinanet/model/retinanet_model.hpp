// The host model: the RetinaNet (retinanet_network.hpp) on the CPU backend, with the parameters
// it owns (torchvision's names and layouts: checkpoints, imported state dicts, and the CUDA
// backend's mirror all address them by name), their initialization and the anchors of its grids.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <focal/core/size2d.hpp>

#include "backend/cpu/backend.hpp"
#include "config.hpp"
#include "retinanet_network.hpp"

namespace retinanet::model {

template <class T>
using head_outputs = head_outputs_of<std::vector<T>>;

template <class T>
class retinanet_model {
public:
    explicit retinanet_model(const model_config& config);
    retinanet_model(const retinanet_model&) = delete;  // the network refers to this model's backend
    retinanet_model& operator=(const retinanet_model&) = delete;

    head_outputs<T> forward(const cpu::tensor<T>& images);
    // Accumulates parameter gradients; d_cls [N][A][K], d_box [N][A][4] as forward's outputs.
    void backward(const std::vector<T>& d_cls, const std::vector<T>& d_box);

    // He/Kaiming backbone, torchvision FPN, the paper's heads (see head.hpp); deterministic in seed.
    void initialize(std::uint64_t seed);
    cpu::parameter_list<T>& parameters() { return backend_.parameters; }
    void zero_grad();
    // Called during backward with each range [first, first + count) of parameters() whose
    // gradients are final for the batch (a data-parallel trainer reduces them meanwhile).
    void on_gradients_ready(gradients_ready_fn listener) { backend_.on_gradients_ready = std::move(listener); }
    void clear() { network_.clear(); }  // drops cached forward state (after an aborted step)
    const model_config& config() const noexcept { return network_.config(); }

    // focal anchors for a batch of `image` size whose head grids are `grids` (row-major A x 4).
    std::vector<T> anchors(focal::size2d image, const std::vector<focal::size2d>& grids) const;

private:
    cpu::backend<T> backend_;
    retinanet_network<cpu::backend<T>> network_;
};

}  // namespace retinanet::model
