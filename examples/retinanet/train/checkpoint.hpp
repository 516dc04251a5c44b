// Checkpoints: one npz holding every parameter under its torchvision name (float32, torchvision's
// shape), the optimizer's velocities ("optimizer.<name>") and the run's state ("run.*": iteration,
// total iterations, the loss normalizer's running value, the configuration's name). Written
// atomically (io::write_npz: temporary file + rename), so a crash mid-write keeps the last one.
// A torchvision state dict exported by tools/export_torchvision.py loads as parameters only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/cpu/tensor.hpp"

namespace retinanet::train {

struct run_state {
    std::int64_t iteration = 0;          // iterations completed
    std::int64_t total_iterations = 0;   // the schedule's length
    double loss_normalizer = 100.0;      // focal::retinanet_loss_state::ema
    std::string config_name;
};

void save_checkpoint(const std::filesystem::path& file, const cpu::parameter_list<float>& params,
                     const std::vector<std::vector<float>>& velocity, const run_state& state);

// Loads parameters by name (every parameter of `params` must be present with its shape; extra
// arrays are an error unless they are optimizer./run. entries). Fills velocity and state when the
// file has them (a full checkpoint) and returns whether it did.
bool load_checkpoint(const std::filesystem::path& file, const cpu::parameter_list<float>& params,
                     std::vector<std::vector<float>>* velocity, run_state* state);

}  // namespace retinanet::train
