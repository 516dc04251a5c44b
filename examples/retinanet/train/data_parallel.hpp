// What the training loop does differently on W ranks (distributed/process_group.hpp), the
// detectron2 / PyTorch DDP way:
// - `batch` is the global batch: rank r takes samples r, r + W, ... of each step's B stream
//   samples, so W ranks train on the images one rank would, and a run resumed with another W
//   continues the same stream;
// - every rank checks that it was started like rank 0 (the run's fingerprint), then starts from
//   rank 0's parameters, velocities and run state (fresh, loaded or resumed);
// - gradients are averaged in buckets while backward runs (distributed/gradient_reducer.hpp);
// - rank 0 alone logs, writes checkpoints and metrics; the time budget is rank 0's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu/tensor.hpp"
#include "checkpoint.hpp"
#include "distributed/process_group.hpp"

namespace retinanet::train {

struct data_parallel_options {
    distributed::process_group* group = nullptr;  // null: this process alone
    std::size_t bucket_bytes = 25u << 20;         // gradients per allreduce (PyTorch DDP's 25 MB)
    bool overlap = true;                          // reduce buckets while backward runs
    // The loss normalizer's positives: summed over the ranks (mmdetection's reduce_mean(num_pos);
    // the normalizer is then the one-rank value of the global batch), or each rank's own
    // (detectron2's per-rank running average).
    bool global_positives = true;
    std::int64_t check_replicas_every = 0;  // > 0: every N steps, fail unless all ranks' parameters are identical
    bool reduce_on_one_rank = false;        // reduce even on one rank: runs the reduction path (NCCL) on one GPU
};

// The group's size and rank, with a null group as one process.
int world_size(const data_parallel_options& o) noexcept;
int world_rank(const data_parallel_options& o) noexcept;
// Whether an engine reduces its gradients (several ranks, or reduce_on_one_rank).
bool reduces_gradients(const data_parallel_options& o) noexcept;
// What an engine's running loss normalizer is multiplied by for checkpoints, which hold the whole
// batch's: W under per-rank positives (each rank's follows about 1/W of the batch's), else 1.
double normalizer_share(const data_parallel_options& o) noexcept;

// The stream indices of `step`'s samples on this rank: step B + r + k W for k < B / W.
std::vector<std::size_t> rank_samples(std::size_t step, int batch, int rank, int ranks);

// Fails on every rank (focal's message, naming the first differing line) unless every rank's
// `fingerprint` (one "key=value" per line) equals rank 0's. Collective.
void require_same_run(distributed::process_group& group, const std::string& fingerprint);

// Rank 0's parameters, velocities and run state into every rank. Collective.
void broadcast_start(distributed::process_group& group, const cpu::parameter_list<float>& params, std::vector<std::vector<float>>& velocity,
                     run_state& state);

// FNV-1a over the parameters' bytes.
std::uint64_t parameters_hash(const cpu::parameter_list<float>& params);

// Fails on every rank unless every rank's parameters hash equal to rank 0's. Collective.
void require_identical_replicas(distributed::process_group& group, const cpu::parameter_list<float>& params, std::int64_t iteration);

}  // namespace retinanet::train
