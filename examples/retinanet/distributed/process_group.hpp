// The processes of a data-parallel run (its "world"): W ranks, each training on its share of every
// batch. The trainer talks to them only through this interface, so the CPU and CUDA engines share
// it, and a build without MPI (or a run without mpirun) is the one-rank group below.
//
// Every collective must be called by every rank in the same order (as MPI requires). Sums are
// bitwise the same on every rank by construction (each element is reduced on one rank, then sent
// to all: reduce-scatter + all-gather), not by an MPI library's advice, so parameters updated from
// them stay identical on every rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <focal/core/error.hpp>

namespace retinanet::distributed {

// An error every rank raised together (a collective check failed on all of them): each rank can
// report it and end normally. Any other error on one rank of several must end the job
// (process_group::abort), since the others would wait for it in their next collective.
class collective_error : public focal::error {
public:
    using focal::error::error;
};

class process_group {
public:
    virtual ~process_group() = default;
    virtual int rank() const noexcept = 0;
    virtual int size() const noexcept = 0;
    // The ranks on this rank's machine (threads are shared among them) and this rank's index there
    // (its GPU, with --device cuda).
    virtual int local_size() const noexcept = 0;
    virtual int local_rank() const noexcept = 0;
    // "1 process", "4 ranks (Open MPI v4.1.4)".
    virtual std::string describe() const = 0;
    // Whether collectives may be called from a thread other than the one that joined (one thread
    // at a time: MPI_THREAD_SERIALIZED), as the gradient reducer's communication thread does.
    virtual bool callable_from_any_thread() const noexcept = 0;

    // `root`'s bytes into every rank's `data` (the same size on every rank).
    virtual void broadcast(std::span<std::byte> data, int root) = 0;
    // Element-wise sums over the ranks, in place, bitwise the same on every rank.
    virtual void sum(std::span<float> values) = 0;
    virtual void sum(std::span<double> values) = 0;
    virtual void sum(std::span<std::int64_t> values) = 0;
    // Every rank's bytes on `root`, in rank order (empty on the other ranks).
    virtual std::vector<std::vector<std::byte>> gather(std::span<const std::byte> data, int root) = 0;

    // Ends every rank of the job now with `code` (MPI_Abort); returns only for one process.
    virtual void abort(int code) noexcept = 0;

    bool is_root() const noexcept { return rank() == 0; }
};

// The group of one process: collectives are identities.
std::unique_ptr<process_group> single_process();

// The world this process was started in: MPI's when a launcher (mpirun, srun) started it with
// more than one rank, else single_process(). A multi-rank launch of a build without MPI is a
// focal::error that says so (it would otherwise train W independent copies into one folder).
// Keep the group alive until the process ends (MPI is finalized with it).
std::unique_ptr<process_group> join_launched_world(int& argc, char**& argv);

// Whether this build can join an MPI launch.
bool built_with_mpi() noexcept;

// Helpers over the byte collectives.
template <class T>
void broadcast_values(process_group& group, std::span<T> values, int root = 0) {
    group.broadcast(std::as_writable_bytes(values), root);
}
template <class T>
void broadcast_value(process_group& group, T& value, int root = 0) {
    broadcast_values(group, std::span<T>(&value, 1), root);
}
// Whether `flag` is set on any rank (every rank learns it).
inline bool any_rank(process_group& group, bool flag) {
    std::int64_t count = flag ? 1 : 0;
    group.sum(std::span<std::int64_t>(&count, 1));
    return count > 0;
}
// A vector whose size only `root` knows.
template <class T>
void broadcast_vector(process_group& group, std::vector<T>& values, int root = 0) {
    auto size = static_cast<std::uint64_t>(values.size());
    broadcast_value(group, size, root);
    values.resize(static_cast<std::size_t>(size));
    broadcast_values(group, std::span<T>(values), root);
}

}  // namespace retinanet::distributed
