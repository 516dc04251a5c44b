#include "tensor.hpp"

#include <algorithm>
#include <memory>

#include <thread>

#include <malloc.h>

#include "spin_pool.hpp"

namespace retinanet::cpu {

template <class T>
parameter<T>::parameter(std::string n, std::vector<std::size_t> s, T fill) : name(std::move(n)), shape(std::move(s)) {
    std::size_t count = 1;
    for (auto d : shape) count *= d;
    value.assign(count, fill);
    grad.assign(count, T(0));
}
template struct parameter<float>;
template struct parameter<double>;

namespace {
int thread_count = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
std::unique_ptr<spin_pool> pool;  // thread_count - 1 workers; the caller is the last thread
thread_local bool grad_mode = true;
}  // namespace

void keep_freed_memory() {
#if defined(__GLIBC__)
    static const bool done = [] {
        mallopt(M_MMAP_THRESHOLD, 1 << 30);  // large blocks from the heap, reused after free
        mallopt(M_TRIM_THRESHOLD, 1 << 30);  // and not returned to the OS between steps
        return true;
    }();
    (void)done;
#endif
}

// Not thread-safe: call before training starts.
void set_threads(int threads) {
    thread_count = std::max(1, threads);
    pool.reset();
}
int threads() { return thread_count; }
void set_grad_enabled(bool enabled) { grad_mode = enabled; }
bool grad_enabled() { return grad_mode; }

void parallel_tasks(std::size_t tasks, const std::function<void(std::size_t)>& fn) {
    if (tasks == 0) return;
    const auto t = static_cast<std::size_t>(threads());
    if (t <= 1 || tasks == 1) {
        for (std::size_t i = 0; i < tasks; ++i) fn(i);
        return;
    }
    if (!pool) pool = std::make_unique<spin_pool>(t - 1);
    pool->run(tasks, fn);
}

void parallel_ranges(std::size_t size, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& fn) {
    grain = std::max<std::size_t>(grain, 1);
    parallel_tasks((size + grain - 1) / grain, [&](std::size_t task) { fn(task * grain, std::min(size, (task + 1) * grain)); });
}

}  // namespace retinanet::cpu
