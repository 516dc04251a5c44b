#include "optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "backend/element_rules/sgd.hpp"
#include "support/check.hpp"

namespace retinanet::train {

double lr_schedule::at(std::int64_t iteration, std::int64_t total) const {
    double factor = 1.0;
    if (iteration < warmup_iterations) {
        const double t = static_cast<double>(iteration) / static_cast<double>(warmup_iterations);
        factor = warmup_factor * (1.0 - t) + t;
    }
    const double progress = total > 0 ? static_cast<double>(iteration) / static_cast<double>(total) : 0.0;
    if (decay == decay_kind::step) {
        for (double s : steps)
            if (progress >= s) factor *= gamma;
    } else {
        factor *= final_factor + (1.0 - final_factor) * 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(1.0, progress)));
    }
    return base_lr * factor;
}

template <class T>
double sgd::step(const cpu::parameter_list<T>& params, std::vector<std::vector<T>>& velocity, double lr) const {
    if (velocity.size() != params.size()) {
        velocity.clear();
        for (auto* p : params) velocity.emplace_back(p->size(), T(0));
    }
    double sq = 0;
    for (auto* p : params)
        if (p->trainable)
            for (T g : p->grad) sq += static_cast<double>(g) * g;
    const double norm = std::sqrt(sq);
    if (!element_rules::finite_norm(norm)) return norm;
    const double scale = element_rules::clip_scale(norm, clip_norm);
    for (std::size_t i = 0; i < params.size(); ++i) {
        auto& p = *params[i];
        if (!p.trainable) continue;
        require(velocity[i].size() == p.size(), "sgd::step", "velocity of " + p.name, "sized as the parameter",
                velocity[i].size());
        const T wd = p.decay ? static_cast<T>(weight_decay) : T(0), m = static_cast<T>(momentum), s = static_cast<T>(scale),
                rate = static_cast<T>(lr);
        T* v = velocity[i].data();
        for (std::size_t j = 0; j < p.size(); ++j) element_rules::sgd_update(p.value[j], v[j], p.grad[j], s, wd, m, rate);
    }
    return norm;
}

template double sgd::step<float>(const cpu::parameter_list<float>&, std::vector<std::vector<float>>&, double) const;
template double sgd::step<double>(const cpu::parameter_list<double>&, std::vector<std::vector<double>>&, double) const;

}  // namespace retinanet::train
