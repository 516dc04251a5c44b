#include "spin_pool.hpp"

#include <chrono>
#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RETINANET_PAUSE() _mm_pause()
#else
#define RETINANET_PAUSE() std::this_thread::yield()
#endif

namespace retinanet::cpu {
namespace {
thread_local bool inside_job = false;
constexpr auto spin_time = std::chrono::microseconds(100);  // then sleep until the next job

// Busy-waiting politely: pause instructions first, then yield the core, so an oversubscribed
// machine (other processes, ctest -j) still runs the thread being waited for.
inline void relax(int iteration) {
    if (iteration < 2048) RETINANET_PAUSE();
    else std::this_thread::yield();
}
}  // namespace

spin_pool::spin_pool(std::size_t workers) {
    for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this, i] { work(i); });
}

spin_pool::~spin_pool() {
    stopping_ = true;
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& t : threads_) t.join();
}

void spin_pool::drain() {
    for (std::size_t t; (t = next_.fetch_add(1)) < tasks_;) {
        try {
            (*job_)(t);
        } catch (...) {
            if (!failed_.exchange(true)) failure_ = std::current_exception();
            next_ = tasks_;
        }
    }
}

void spin_pool::work(std::size_t) {
    inside_job = true;
    std::uint64_t seen = 0;
    for (;;) {
        const auto until = std::chrono::steady_clock::now() + spin_time;
        std::uint64_t g;
        for (int i = 0; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
            if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) generation_.wait(seen);
            else relax(i);
        }
        seen = g;
        if (stopping_) return;
        drain();
        busy_.fetch_sub(1, std::memory_order_release);
    }
}

void spin_pool::run(std::size_t tasks, const std::function<void(std::size_t)>& fn) {
    if (tasks <= 1 || threads_.empty() || inside_job) {
        for (std::size_t t = 0; t < tasks; ++t) fn(t);
        return;
    }
    job_ = &fn;
    tasks_ = tasks;
    failed_ = false;
    failure_ = nullptr;
    next_ = 0;
    busy_ = threads_.size();
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    inside_job = true;
    drain();
    inside_job = false;
    for (int i = 0; busy_.load(std::memory_order_acquire) != 0; ++i) relax(i);
    if (failed_) std::rethrow_exception(failure_);
}

}  // namespace retinanet::cpu
