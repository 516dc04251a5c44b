#include "gradient_reducer.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "support/check.hpp"

namespace retinanet::distributed {
namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

std::vector<std::size_t> sizes_of(const std::vector<std::span<float>>& gradients) {
    std::vector<std::size_t> sizes;
    for (const auto& g : gradients) sizes.push_back(g.size());
    return sizes;
}

std::size_t cap_of(const reducer_options& options) {
    require(options.bucket_bytes > 0, "gradient_reducer", "options.bucket_bytes", "positive", options.bucket_bytes);
    return std::max<std::size_t>(1, options.bucket_bytes / sizeof(float));
}

}  // namespace

gradient_reducer::gradient_reducer(process_group& group, std::vector<std::span<float>> gradients, const reducer_options& options)
    : group_(group), gradients_(std::move(gradients)), plan_(plan_buckets(sizes_of(gradients_), cap_of(options))), release_(plan_) {
    for (const auto& members : plan_.members) {
        std::size_t n = 0;
        for (const auto i : members) n += gradients_[i].size();
        staging_.emplace_back(n, 0.0f);
    }
    if (options.overlap && group_.size() > 1 && group_.callable_from_any_thread()) thread_ = std::thread([this] { communicate(); });
}

gradient_reducer::~gradient_reducer() {
    if (!thread_.joinable()) return;
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

std::size_t gradient_reducer::floats_per_step() const noexcept {
    std::size_t n = 0;
    for (const auto& s : staging_) n += s.size();
    return n;
}

void gradient_reducer::begin_step() {
    const std::lock_guard lock(mutex_);
    release_.reset();
    released_ = taken_ = reduced_ = 0;
}

void gradient_reducer::ready(std::size_t gradient) {
    bool more = false;
    {
        const std::lock_guard lock(mutex_);
        more = !release_.ready(gradient).empty();
        released_ = release_.released();
    }
    if (more) changed_.notify_all();
}

// Sum over the ranks in the staging buffer, then the average back into the spans.
void gradient_reducer::reduce(std::size_t bucket) {
    const auto start = clock_type::now();
    std::vector<float>& staging = staging_[bucket];
    auto at = staging.begin();
    for (const auto i : plan_.members[bucket]) at = std::copy(gradients_[i].begin(), gradients_[i].end(), at);
    group_.sum(std::span<float>(staging));
    const auto w = static_cast<float>(group_.size());
    at = staging.begin();
    for (const auto i : plan_.members[bucket])
        for (float& g : gradients_[i]) g = *at++ / w;
    communication_seconds_ += seconds_since(start);
}

void gradient_reducer::communicate() {
    std::unique_lock lock(mutex_);
    while (true) {
        changed_.wait(lock, [this] { return stopping_ || taken_ < released_; });
        if (stopping_) return;
        const std::size_t bucket = taken_++;
        lock.unlock();
        try {
            reduce(bucket);
        } catch (...) {
            lock.lock();
            failure_ = std::current_exception();
            reduced_ = taken_ = released_ = buckets();
            changed_.notify_all();
            continue;
        }
        lock.lock();
        ++reduced_;
        changed_.notify_all();
    }
}

void gradient_reducer::finish() {
    const auto start = clock_type::now();
    if (!thread_.joinable()) {
        release_.ready_all();
        for (std::size_t b = 0; b < buckets(); ++b) reduce(b);
    } else {
        {
            std::unique_lock lock(mutex_);
            release_.ready_all();
            released_ = release_.released();
            changed_.notify_all();
            changed_.wait(lock, [this] { return reduced_ == buckets(); });
        }
        if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
    }
    exposed_seconds_ += seconds_since(start);
}

}  // namespace retinanet::distributed
