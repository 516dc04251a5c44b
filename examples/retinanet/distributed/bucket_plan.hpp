// Gradients packed into buckets, and when each bucket may be reduced: what the CPU engine's
// gradient_reducer (MPI) and the CUDA engine (NCCL) share, so both reduce the same buckets in the
// same order. Gradients are numbered in the order backward completes them (the reverse of the
// parameters' creation order); consecutive ones fill a bucket until the next would pass the cap
// (PyTorch DDP's bucket_cap_mb), and a gradient larger than the cap gets a bucket of its own.
// A bucket is released when all its gradients are ready and every earlier bucket was released:
// each rank issues its collectives in bucket order, whatever order backward finished them in.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace retinanet::distributed {

struct bucket_plan {
    std::vector<std::vector<std::size_t>> members;  // per bucket: its gradients, in order
    std::vector<std::size_t> bucket_of;             // per gradient: its bucket
};

// Buckets over gradients of `sizes` elements, at most `cap` elements each (but for single ones).
bucket_plan plan_buckets(std::span<const std::size_t> sizes, std::size_t cap);

class bucket_release {
public:
    explicit bucket_release(const bucket_plan& plan);
    // A new step: nothing ready, nothing released.
    void reset();
    // Marks `gradient` ready (again: nothing changes); returns the buckets that become releasable,
    // in order (usually none, or one).
    std::vector<std::size_t> ready(std::size_t gradient);
    // Marks every gradient ready; returns the buckets not released before, in order.
    std::vector<std::size_t> ready_all();
    std::size_t released() const noexcept { return next_; }

private:
    std::vector<std::size_t> release_ready();
    const bucket_plan& plan_;
    std::vector<bool> is_ready_;
    std::vector<std::size_t> pending_;  // per bucket: gradients not ready yet
    std::size_t next_ = 0;              // the first bucket not released
};

}  // namespace retinanet::distributed
