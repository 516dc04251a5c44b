#include "checkpoint.hpp"

#include <focal/core/error.hpp>

#include "io/npz.hpp"

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

void save_checkpoint(const std::filesystem::path& file, const nn::parameter_list<float>& params,
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

bool load_checkpoint(const std::filesystem::path& file, const nn::parameter_list<float>& params,
                     std::vector<std::vector<float>>* velocity, run_state* state) {
    constexpr const char* where = "load_checkpoint";
    const auto archive = io::read_npz(file);
    const std::string what = "'" + file.string() + "'";
    for (const auto* p : params) {
        const auto it = archive.find(p->name);
        if (it == archive.end()) focal::detail::fail(where, what, "a checkpoint of this model (it has no '" + p->name + "')", "another model's");
        focal::detail::require(it->second.shape == p->shape, where, what + " array '" + p->name + "'",
                               "of shape " + shape_text(p->shape), shape_text(it->second.shape));
    }
    for (const auto& [key, array] : archive)
        if (key.rfind(optimizer_prefix, 0) != 0 && key.rfind(run_prefix, 0) != 0) {
            bool known = false;
            for (const auto* p : params) known = known || p->name == key;
            focal::detail::require(known, where, what, "only this model's arrays", "'" + key + "', which it has no parameter for");
        }
    // Everything is checked: now overwrite.
    for (auto* p : params) p->value = archive.at(p->name).as_float32(p->name);
    const bool full = archive.count("run.iteration") != 0;
    if (!full) return false;
    if (velocity) {
        velocity->assign(params.size(), {});
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto it = archive.find(optimizer_prefix + params[i]->name);
            (*velocity)[i] = it != archive.end() ? it->second.as_float32(it->first) : std::vector<float>(params[i]->size(), 0.0f);
            focal::detail::require((*velocity)[i].size() == params[i]->size(), where, what + " optimizer state of " + params[i]->name,
                                   "sized as the parameter", (*velocity)[i].size());
        }
    }
    if (state) {
        auto entry = [&](const std::string& key) -> const io::npz_array& {
            const auto it = archive.find(key);
            if (it == archive.end()) focal::detail::fail(where, what, "a complete checkpoint", "no '" + key + "'");
            return it->second;
        };
        auto scalar = [&](const std::string& key) -> const io::npz_array& {
            const auto& a = entry(key);
            focal::detail::require(a.size() == 1, where, what + " '" + key + "'", "a scalar", a.size(), " values");
            return a;
        };
        state->iteration = scalar("run.iteration").as_int64("run.iteration")[0];
        state->total_iterations = scalar("run.total_iterations").as_int64("run.total_iterations")[0];
        state->loss_normalizer = scalar("run.loss_normalizer").as_float64("run.loss_normalizer")[0];
        const auto& name = entry("run.config_name").as_int64("run.config_name");
        state->config_name.assign(name.begin(), name.end());
    }
    return true;
}

}  // namespace retinanet::train
