// focal/core/thread_pool.hpp: a small fork-join pool for the host drivers.
//
// parallel_for(n_tasks, threads, fn) runs fn(task) for task in [0, n_tasks) on up to `threads`
// threads (the caller is one of them) and returns when all are done. Which thread runs which
// task varies; drivers make results independent of that by giving every task its own output slot
// and combining the slots in task order. A parallel_for called from inside a task of the same
// pool (a nested call) runs its tasks inline on the calling thread instead of waiting on
// workers that are busy with the outer call.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace focal {

class thread_pool {
public:
    explicit thread_pool(std::size_t workers) {
        threads_.reserve(workers);
        for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }

    std::size_t workers() const noexcept { return threads_.size(); }

    // The process-wide pool: hardware_concurrency - 1 workers (the caller makes the last thread).
    static thread_pool& shared() {
        static thread_pool pool(std::max(1u, std::thread::hardware_concurrency()) - 1);
        return pool;
    }

    // Runs fn(0) ... fn(n_tasks - 1) on the caller and up to threads - 1 pool workers
    // (threads = 0: all workers). The first exception thrown by fn is rethrown here after every
    // started task has finished.
    template <class Fn>
    void parallel_for(std::size_t n_tasks, std::size_t threads, Fn&& fn) {
        if (n_tasks == 0) return;
        const std::size_t wanted = threads == 0 ? workers() : threads - 1;
        const std::size_t helpers = inside() ? 0 : std::min({wanted, workers(), n_tasks - 1});
        if (helpers == 0) {
            for (std::size_t t = 0; t < n_tasks; ++t) fn(t);
            return;
        }
        const scope inside_this_pool(this);
        struct shared_state {
            std::atomic<std::size_t> next{0};
            std::size_t running = 0;
            std::exception_ptr failure;
            std::mutex m;
            std::condition_variable done;
        } state;
        state.running = helpers;
        auto drain = [&state, &fn, n_tasks] {
            try {
                for (std::size_t t; (t = state.next.fetch_add(1)) < n_tasks;) fn(t);
            } catch (...) {
                std::lock_guard lock(state.m);
                if (!state.failure) state.failure = std::current_exception();
                state.next = n_tasks;
            }
        };
        {
            std::lock_guard lock(mutex_);
            for (std::size_t h = 0; h < helpers; ++h)
                queue_.emplace_back([&state, drain] {
                    drain();
                    std::lock_guard lock(state.m);
                    if (--state.running == 0) state.done.notify_one();
                });
        }
        wake_.notify_all();
        drain();
        std::unique_lock lock(state.m);
        state.done.wait(lock, [&state] { return state.running == 0; });
        if (state.failure) std::rethrow_exception(state.failure);
    }

private:
    // Which pool's task the current thread is running (nullptr: none).
    static const thread_pool*& current() noexcept {
        static thread_local const thread_pool* pool = nullptr;
        return pool;
    }
    bool inside() const noexcept { return current() == this; }
    struct scope {
        const thread_pool* previous;
        explicit scope(const thread_pool* pool) noexcept : previous(current()) { current() = pool; }
        ~scope() { current() = previous; }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;
    };

    void work() {
        const scope inside_this_pool(this);
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stopping and nothing left
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            job();
        }
    }

    std::vector<std::thread> threads_;
    std::deque<std::function<void()>> queue_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
};

}  // namespace focal
