#include "bucket_plan.hpp"

#include "support/check.hpp"

namespace retinanet::distributed {

bucket_plan plan_buckets(std::span<const std::size_t> sizes, std::size_t cap) {
    require(cap > 0, "plan_buckets", "cap", "positive", cap);
    bucket_plan plan;
    std::size_t filled = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (plan.members.empty() || (filled > 0 && filled + sizes[i] > cap)) plan.members.emplace_back(), filled = 0;
        plan.members.back().push_back(i);
        plan.bucket_of.push_back(plan.members.size() - 1);
        filled += sizes[i];
    }
    return plan;
}

bucket_release::bucket_release(const bucket_plan& plan) : plan_(plan) { reset(); }

void bucket_release::reset() {
    is_ready_.assign(plan_.bucket_of.size(), false);
    pending_.clear();
    for (const auto& m : plan_.members) pending_.push_back(m.size());
    next_ = 0;
}

std::vector<std::size_t> bucket_release::ready(std::size_t gradient) {
    require(gradient < is_ready_.size(), "bucket_release::ready", "gradient", concat("an index below ", is_ready_.size()), gradient);
    if (is_ready_[gradient]) return {};
    is_ready_[gradient] = true;
    --pending_[plan_.bucket_of[gradient]];
    return release_ready();
}

std::vector<std::size_t> bucket_release::ready_all() {
    for (std::size_t i = 0; i < is_ready_.size(); ++i)
        if (!is_ready_[i]) is_ready_[i] = true, --pending_[plan_.bucket_of[i]];
    return release_ready();
}

std::vector<std::size_t> bucket_release::release_ready() {
    std::vector<std::size_t> released;
    while (next_ < pending_.size() && pending_[next_] == 0) released.push_back(next_++);
    return released;
}

}  // namespace retinanet::distributed
