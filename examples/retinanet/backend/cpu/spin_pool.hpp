// A fork-join pool for the layers' many short parallel regions (a training step has hundreds,
// some of a few microseconds): workers spin for a while after each job before sleeping on a
// futex (std::atomic::wait), so back-to-back regions do not pay a sleep/wake-up each, as a
// condition-variable pool does. Calls from inside a job run inline.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace retinanet::cpu {

class spin_pool {
public:
    explicit spin_pool(std::size_t workers);
    ~spin_pool();
    spin_pool(const spin_pool&) = delete;
    spin_pool& operator=(const spin_pool&) = delete;

    // fn(0) ... fn(tasks - 1) on the caller and the workers; the first exception is rethrown.
    void run(std::size_t tasks, const std::function<void(std::size_t)>& fn);

private:
    void work(std::size_t index);
    void drain();

    std::vector<std::thread> threads_;
    std::atomic<std::uint64_t> generation_{0};  // bumped per job (and at shutdown)
    std::atomic<std::size_t> next_{0}, busy_{0};
    const std::function<void(std::size_t)>* job_ = nullptr;
    std::size_t tasks_ = 0;
    std::exception_ptr failure_;
    std::atomic<bool> failed_{false}, stopping_{false};
};

}  // namespace retinanet::cpu
