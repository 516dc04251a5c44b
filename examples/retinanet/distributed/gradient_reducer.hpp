// Averages the CPU engine's gradients over the ranks of a process group: PyTorch DDP's scheme on a
// process_group. The gradients are flat spans in the order backward completes them (the reverse
// of the parameters' creation order), the same on every rank; they are packed into buckets of
// about `bucket_bytes` (bucket_plan.hpp, as the CUDA engine's), and each bucket is summed
// (process_group::sum, bitwise the same on every rank) and divided by W as soon as it is released,
// on a communication thread, while backward goes on with the layers below. Buckets are released
// in index order on every rank, whatever order their gradients become ready in, so every rank
// issues the same collectives.
//
//   reducer.begin_step();          // before backward
//   reducer.ready(i);              // from backward, when span i is final (any order, any thread)
//   reducer.finish();              // after backward: every span averaged, on return
//
// Open MPI makes no background progress for non-blocking collectives, so the overlap comes from
// that thread's blocking calls. Without overlap (or when the group's collectives must stay on one
// thread) finish() reduces every bucket on the calling thread.
#pragma once

#include <condition_variable>
#include <utility>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "bucket_plan.hpp"
#include "process_group.hpp"

namespace retinanet::distributed {

struct reducer_options {
    std::size_t bucket_bytes = 25u << 20;  // PyTorch DDP's bucket_cap_mb
    bool overlap = true;
};

class gradient_reducer {
public:
    gradient_reducer(process_group& group, std::vector<std::span<float>> gradients, const reducer_options& options = {});
    ~gradient_reducer();
    gradient_reducer(const gradient_reducer&) = delete;
    gradient_reducer& operator=(const gradient_reducer&) = delete;

    void begin_step();
    void ready(std::size_t gradient);
    // Marks what backward did not report as ready, waits for every bucket and returns when every
    // span holds the average over the ranks. Rethrows a failure of the communication thread.
    void finish();

    std::size_t buckets() const noexcept { return plan_.members.size(); }
    std::size_t floats_per_step() const noexcept;  // the values summed per step
    bool overlapping() const noexcept { return thread_.joinable(); }
    // Seconds finish() waited for communication (the part backward did not hide), and seconds the
    // collectives took, over all steps so far.
    double exposed_seconds() const noexcept { return exposed_seconds_; }
    double communication_seconds() const noexcept { return communication_seconds_; }

private:
    void reduce(std::size_t bucket);
    void communicate();  // the communication thread's loop

    process_group& group_;
    std::vector<std::span<float>> gradients_;
    bucket_plan plan_;
    bucket_release release_;
    std::vector<std::vector<float>> staging_;  // per bucket: its gradients' values back to back

    std::mutex mutex_;
    std::condition_variable changed_;
    std::size_t released_ = 0, taken_ = 0, reduced_ = 0;  // buckets of this step
    bool stopping_ = false;
    std::exception_ptr failure_;
    double exposed_seconds_ = 0, communication_seconds_ = 0;
    std::thread thread_;
};

}  // namespace retinanet::distributed
