#include "data_parallel.hpp"

#include <sstream>

#include "support/check.hpp"

namespace retinanet::train {
namespace {

constexpr const char* where = "train (data parallel)";

// fail() as a distributed::collective_error: every rank throws it.
template <class... Got>
[[noreturn]] void fail_together(std::string_view at, std::string_view what, std::string_view expected, const Got&... got) {
    throw distributed::collective_error(check_message(at, what, expected, got...));
}

// The first line where a and b differ: "batch=8" against "batch=16".
std::pair<std::string, std::string> first_difference(const std::string& a, const std::string& b) {
    std::istringstream in_a(a), in_b(b);
    std::string la, lb;
    while (true) {
        const bool ga = static_cast<bool>(std::getline(in_a, la)), gb = static_cast<bool>(std::getline(in_b, lb));
        if (!ga && !gb) return {"", ""};
        if (!ga) la = "(nothing)";
        if (!gb) lb = "(nothing)";
        if (la != lb || !ga || !gb) return {la, lb};
    }
}

}  // namespace

int world_size(const data_parallel_options& o) noexcept { return o.group ? o.group->size() : 1; }
int world_rank(const data_parallel_options& o) noexcept { return o.group ? o.group->rank() : 0; }

bool reduces_gradients(const data_parallel_options& o) noexcept {
    return o.group != nullptr && (o.group->size() > 1 || o.reduce_on_one_rank);
}

double normalizer_share(const data_parallel_options& o) noexcept {
    return o.global_positives ? 1.0 : static_cast<double>(world_size(o));
}

std::vector<std::size_t> rank_samples(std::size_t step, int batch, int rank, int ranks) {
    require(ranks > 0 && batch % ranks == 0, where, "the batch", concat("divisible by the ", ranks, " ranks (each takes batch / ranks)"),
            batch);
    std::vector<std::size_t> indices;
    for (int b = rank; b < batch; b += ranks) indices.push_back(step * static_cast<std::size_t>(batch) + static_cast<std::size_t>(b));
    return indices;
}

void require_same_run(distributed::process_group& group, const std::string& fingerprint) {
    if (group.size() == 1) return;
    std::vector<char> root(fingerprint.begin(), fingerprint.end());
    distributed::broadcast_vector(group, root);
    const std::string root_text(root.begin(), root.end());
    const bool differs = root_text != fingerprint;
    if (!distributed::any_rank(group, differs)) return;
    const auto [mine, theirs] = first_difference(fingerprint, root_text);
    fail_together(where, concat("rank ", group.rank(), "'s configuration and arguments"),
                  "the same as rank 0's (start every rank with one command)",
                  differs ? concat("'", mine, "' where rank 0 has '", theirs, "'") : std::string("another rank's differ (see its message)"));
}

void broadcast_start(distributed::process_group& group, const cpu::parameter_list<float>& params, std::vector<std::vector<float>>& velocity,
                     run_state& state) {
    if (group.size() == 1) return;
    for (auto* p : params) distributed::broadcast_values(group, std::span<float>(p->value));
    std::uint64_t has_velocity = velocity.size() == params.size() ? 1 : 0;
    distributed::broadcast_value(group, has_velocity);
    if (has_velocity) {
        velocity.resize(params.size());
        for (std::size_t i = 0; i < params.size(); ++i) {
            velocity[i].resize(params[i]->size());
            distributed::broadcast_values(group, std::span<float>(velocity[i]));
        }
    } else {
        velocity.clear();
    }
    distributed::broadcast_value(group, state.iteration);
    distributed::broadcast_value(group, state.total_iterations);
    distributed::broadcast_value(group, state.loss_normalizer);
}

std::uint64_t parameters_hash(const cpu::parameter_list<float>& params) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const auto* p : params) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(p->value.data());
        for (std::size_t i = 0; i < p->value.size() * sizeof(float); ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
    }
    return h;
}

void require_identical_replicas(distributed::process_group& group, const cpu::parameter_list<float>& params, std::int64_t iteration) {
    if (group.size() == 1) return;
    const std::uint64_t mine = parameters_hash(params);
    std::uint64_t root = mine;
    distributed::broadcast_value(group, root);
    if (!distributed::any_rank(group, mine != root)) return;
    fail_together(where, concat("the parameters after iteration ", iteration), "bitwise identical on every rank",
         concat("rank ", group.rank(), mine != root ? " differs from rank 0" : ": another rank differs from rank 0"));
}

}  // namespace retinanet::train
