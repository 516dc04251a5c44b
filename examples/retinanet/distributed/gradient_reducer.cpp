#include "gradient_reducer.hpp"

#include <algorithm>
#include <chrono>

#include "support/check.hpp"

namespace retinanet::distributed {
namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

}  // namespace

gradient_reducer::gradient_reducer(process_group& group, std::vector<std::span<float>> gradients, const reducer_options& options)
    : group_(group), gradients_(std::move(gradients)), bucket_of_(gradients_.size()), is_ready_(gradients_.size(), false) {
    require(options.bucket_bytes > 0, "gradient_reducer", "options.bucket_bytes", "positive", options.bucket_bytes);
    const std::size_t cap = std::max<std::size_t>(1, options.bucket_bytes / sizeof(float));
    // Consecutive gradients fill a bucket until the next would pass the cap (a larger gradient
    // gets a bucket of its own).
    std::size_t filled = 0;
    for (std::size_t i = 0; i < gradients_.size(); ++i) {
        const std::size_t n = gradients_[i].size();
        if (buckets_.empty() || (filled > 0 && filled + n > cap)) buckets_.emplace_back(), filled = 0;
        buckets_.back().members.push_back(i);
        bucket_of_[i] = buckets_.size() - 1;
        filled += n;
    }
    for (auto& b : buckets_) {
        std::size_t n = 0;
        for (const auto i : b.members) n += gradients_[i].size();
        b.staging.assign(n, 0.0f);
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
    for (const auto& b : buckets_) n += b.staging.size();
    return n;
}

void gradient_reducer::begin_step() {
    const std::lock_guard lock(mutex_);
    std::fill(is_ready_.begin(), is_ready_.end(), false);
    for (auto& b : buckets_) b.pending = b.members.size();
    next_to_reduce_ = reduced_ = 0;
    step_open_ = true;
}

void gradient_reducer::ready(std::size_t gradient) {
    require(gradient < gradients_.size(), "gradient_reducer::ready", "gradient", concat("an index below ", gradients_.size()), gradient);
    bool bucket_done = false;
    {
        const std::lock_guard lock(mutex_);
        if (is_ready_[gradient]) return;
        is_ready_[gradient] = true;
        bucket_done = --buckets_[bucket_of_[gradient]].pending == 0;
    }
    if (bucket_done) changed_.notify_all();
}

// Sum over the ranks in the staging buffer, then the average back into the spans.
void gradient_reducer::reduce(bucket& b) {
    const auto start = clock_type::now();
    std::size_t at = 0;
    for (const auto i : b.members) at = static_cast<std::size_t>(std::copy(gradients_[i].begin(), gradients_[i].end(), b.staging.begin() + at) - b.staging.begin());
    group_.sum(std::span<float>(b.staging));
    const auto w = static_cast<float>(group_.size());
    at = 0;
    for (const auto i : b.members)
        for (float& g : gradients_[i]) g = b.staging[at++] / w;
    communication_seconds_ += seconds_since(start);
}

void gradient_reducer::communicate() {
    std::unique_lock lock(mutex_);
    while (true) {
        changed_.wait(lock, [this] {
            return stopping_ || (step_open_ && next_to_reduce_ < buckets_.size() && buckets_[next_to_reduce_].pending == 0);
        });
        if (stopping_) return;
        bucket& b = buckets_[next_to_reduce_++];
        lock.unlock();
        try {
            reduce(b);
        } catch (...) {
            lock.lock();
            failure_ = std::current_exception();
            reduced_ = buckets_.size();
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
        for (auto& b : buckets_) reduce(b);
    } else {
        {
            std::unique_lock lock(mutex_);
            for (std::size_t i = 0; i < is_ready_.size(); ++i)
                if (!is_ready_[i]) is_ready_[i] = true, --buckets_[bucket_of_[i]].pending;
            changed_.notify_all();
            changed_.wait(lock, [this] { return reduced_ == buckets_.size(); });
            step_open_ = false;
        }
        if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
    }
    exposed_seconds_ += seconds_since(start);
}

}  // namespace retinanet::distributed
