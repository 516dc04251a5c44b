#include "checkpoint.hpp"

#include <cmath>

#include <focal/core/error.hpp>

#include "io/npz.hpp"
#include "support/check.hpp"

namespace retinanet::train {
namespace {
constexpr const char* optimizer_prefix = "optimizer.";
constexpr const char* run_prefix = "run.";

std::string shape_text(const std::vector<std::size_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + ")";
}
io::npz_array int64_scalar(std::int64_t v) { return {{}, std::vector<std::int64_t>{v}}; }
}  // namespace

void save_checkpoint(const std::filesystem::path& file, const cpu::parameter_list<float>& params,
                     const std::vector<std::vector<float>>& velocity, const run_state& state) {
    io::npz_archive archive;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto& p = *params[i];
        archive[p.name] = {p.shape, p.value};
        if (i < velocity.size() && p.trainable) archive[optimizer_prefix + p.name] = {p.shape, velocity[i]};
    }
    archive["run.iteration"] = int64_scalar(state.iteration);
    archive["run.total_iterations"] = int64_scalar(state.total_iterations);
    archive["run.loss_normalizer"] = {{}, std::vector<double>{state.loss_normalizer}};
    std::vector<std::int64_t> name(state.config_name.begin(), state.config_name.end());
    archive["run.config_name"] = {{name.size()}, name};
    io::write_npz(file, archive);
}

bool load_checkpoint(const std::filesystem::path& file, const cpu::parameter_list<float>& params,
                     std::vector<std::vector<float>>* velocity, run_state* state) {
    constexpr const char* where = "load_checkpoint";
    const auto archive = io::read_npz(file);
    const std::string what = "'" + file.string() + "'";
    for (const auto* p : params) {
        const auto it = archive.find(p->name);
        if (it == archive.end()) fail(where, what, "a checkpoint of this model (it has no '" + p->name + "')", "another model's");
        require(it->second.shape == p->shape, where, what + " array '" + p->name + "'",
                "of shape " + shape_text(p->shape), shape_text(it->second.shape));
        (void)it->second.as_float32(p->name);  // the dtype, checked before anything is overwritten
    }
    for (const auto& [key, array] : archive)
        if (key.rfind(optimizer_prefix, 0) != 0 && key.rfind(run_prefix, 0) != 0) {
            bool known = false;
            for (const auto* p : params) known = known || p->name == key;
            require(known, where, what, "only this model's arrays", "'" + key + "', which it has no parameter for");
        }
    // Read and check everything into locals first, so that a bad file changes nothing.
    const bool full = archive.count("run.iteration") != 0;
    std::vector<std::vector<float>> new_velocity;
    run_state new_state;
    if (full) {
        for (const auto* p : params) {
            const auto it = archive.find(optimizer_prefix + p->name);
            if (it == archive.end()) {
                new_velocity.emplace_back(p->size(), 0.0f);
                continue;
            }
            require(it->second.shape == p->shape, where, what + " array '" + it->first + "'",
                    "of shape " + shape_text(p->shape), shape_text(it->second.shape));
            new_velocity.push_back(it->second.as_float32(it->first));
        }
        auto scalar = [&](const std::string& key) -> const io::npz_array& {
            const auto it = archive.find(key);
            if (it == archive.end()) fail(where, what, "a complete checkpoint", "no '" + key + "'");
            require(it->second.size() == 1, where, what + " '" + key + "'", "a scalar", it->second.size(), " values");
            return it->second;
        };
        new_state.iteration = scalar("run.iteration").as_int64("run.iteration")[0];
        new_state.total_iterations = scalar("run.total_iterations").as_int64("run.total_iterations")[0];
        new_state.loss_normalizer = scalar("run.loss_normalizer").as_float64("run.loss_normalizer")[0];
        require(new_state.iteration >= 0 && new_state.total_iterations >= 0, where, what + " run.iteration and run.total_iterations",
                "non-negative", concat(new_state.iteration, " and ", new_state.total_iterations));
        require(std::isfinite(new_state.loss_normalizer) && new_state.loss_normalizer > 0, where, what + " run.loss_normalizer",
                "positive and finite", new_state.loss_normalizer);
        const auto it = archive.find("run.config_name");
        if (it == archive.end()) fail(where, what, "a complete checkpoint", "no 'run.config_name'");
        for (const std::int64_t c : it->second.as_int64("run.config_name")) {
            require(c >= 32 && c < 127, where, what + " run.config_name", "printable ASCII codes", c);
            new_state.config_name.push_back(static_cast<char>(c));
        }
    }
    // Everything is checked: now overwrite.
    for (auto* p : params) p->value = archive.at(p->name).as_float32(p->name);
    if (!full) return false;
    if (velocity) *velocity = std::move(new_velocity);
    if (state) *state = std::move(new_state);
    return true;
}

}  // namespace retinanet::train
