// data/prefetch.hpp: run a producer one step ahead (or `depth` steps) on a background thread, so
// that data generation overlaps training.
//
//   prefetcher<batch> batches([&](std::size_t step) { return make_batch(step); }, start_step, 2);
//   for (...) { batch b = batches.next(); ... }   // steps start_step, start_step + 1, ... in order
//
// An exception thrown by the producer is rethrown by the next() that would have returned that
// step (every earlier step is delivered first), and by every next() after it; the producer is
// not called again. The destructor stops the thread and joins it: it waits for the producer call
// in progress, if any, but never for the consumer, so stopping early cannot deadlock.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::data {

template <class T>
class prefetcher {
public:
    prefetcher(std::function<T(std::size_t step)> produce, std::size_t first_step, std::size_t depth = 2)
        : produce_(std::move(produce)), depth_(depth), first_step_(first_step), next_step_(first_step) {
        require(static_cast<bool>(produce_), "retinanet::data::prefetcher", "produce",
                "a callable", "an empty std::function");
        require(depth >= 1, "retinanet::data::prefetcher", "depth", ">= 1", depth);
        worker_ = std::thread([this] { run(); });
    }

    prefetcher(const prefetcher&) = delete;
    prefetcher& operator=(const prefetcher&) = delete;

    ~prefetcher() {
        {
            const std::lock_guard lock(mutex_);
            stop_ = true;
        }
        space_.notify_all();
        worker_.join();
    }

    // The next step's item, waiting for it when the producer is behind.
    T next() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty() || error_; });
        if (queue_.empty()) std::rethrow_exception(error_);
        T item = std::move(queue_.front());
        queue_.pop_front();
        ++consumed_;
        lock.unlock();
        space_.notify_one();
        return item;
    }

    // The step the next call of next() returns.
    std::size_t step() const {
        const std::lock_guard lock(mutex_);
        return first_step_ + consumed_;
    }

private:
    void run() {
        for (;;) {
            std::size_t step = 0;
            {
                std::unique_lock lock(mutex_);
                space_.wait(lock, [this] { return stop_ || queue_.size() < depth_; });
                if (stop_) return;
                step = next_step_++;
            }
            try {
                T item = produce_(step);
                const std::lock_guard lock(mutex_);
                queue_.push_back(std::move(item));
            } catch (...) {
                const std::lock_guard lock(mutex_);
                error_ = std::current_exception();
                ready_.notify_all();
                return;
            }
            ready_.notify_one();
        }
    }

    std::function<T(std::size_t)> produce_;
    std::size_t depth_;
    mutable std::mutex mutex_;
    std::condition_variable ready_, space_;  // an item or error arrived / the queue has room (or stop)
    std::deque<T> queue_;
    std::exception_ptr error_;
    std::size_t first_step_ = 0;
    std::size_t next_step_ = 0;  // the step the producer starts next
    std::size_t consumed_ = 0;   // items next() has returned
    bool stop_ = false;
    std::thread worker_;  // last: starts after every other member is ready
};

}  // namespace retinanet::data
