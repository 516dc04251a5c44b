// The CUDA engine's data-parallel reduction: NCCL on the ranks of a distributed::process_group
// (one GPU per rank). The communicator's unique id is made on rank 0 and broadcast over the group
// (MPI), as NCCL's documentation prescribes; the collectives run on the engine's compute stream,
// after backward. NCCL's allreduce gives every rank the same bits (its ring and tree algorithms
// reduce each element along one path and forward the result), which keeps the replicas identical.
// Built with RETINANET_HAS_NCCL when CMake finds NCCL; otherwise constructing one on several
// ranks is a focal::error that says so.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include <cuda_runtime.h>

#include "distributed/process_group.hpp"
#include "support/check.hpp"

#ifdef RETINANET_HAS_NCCL
#include <nccl.h>
#endif

namespace retinanet::cuda {

#ifdef RETINANET_HAS_NCCL
inline void nccl_check(ncclResult_t status, const char* call) {
    if (status != ncclSuccess) fail("nccl", call, "ncclSuccess", ncclGetErrorString(status), " (", static_cast<int>(status), ")");
}
#endif

class nccl_reduction {
public:
    // Collective over `group`; `device` is this rank's GPU (current when called).
    explicit nccl_reduction(distributed::process_group& group) : ranks_(group.size()) {
#ifdef RETINANET_HAS_NCCL
        ncclUniqueId id{};
        if (group.is_root()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        distributed::broadcast_value(group, id);
        nccl_check(ncclCommInitRank(&comm_, group.size(), id, group.rank()), "ncclCommInitRank");
#else
        fail("retinanet::cuda", "NCCL", "in this build for data-parallel GPU training (the CUDA toolkit's nccl.h and libnccl)",
             concat("a build without it, on ", group.size(), " ranks"));
#endif
    }
    ~nccl_reduction() {
#ifdef RETINANET_HAS_NCCL
        if (comm_ != nullptr) ncclCommDestroy(comm_);
#endif
    }
    nccl_reduction(const nccl_reduction&) = delete;
    nccl_reduction& operator=(const nccl_reduction&) = delete;

    int ranks() const noexcept { return ranks_; }

    // The mean over the ranks, in place.
    void average(float* values, std::size_t count, cudaStream_t stream) { all_reduce(values, count, stream, true); }
    void average(double* values, std::size_t count, cudaStream_t stream) { all_reduce(values, count, stream, true); }
    // The sum over the ranks, in place.
    void sum(std::int64_t* values, std::size_t count, cudaStream_t stream) { all_reduce(values, count, stream, false); }

private:
    template <class T>
    void all_reduce([[maybe_unused]] T* values, [[maybe_unused]] std::size_t count, [[maybe_unused]] cudaStream_t stream,
                    [[maybe_unused]] bool mean) {
#ifdef RETINANET_HAS_NCCL
        ncclDataType_t type = ncclFloat32;
        if constexpr (sizeof(T) == 8 && std::is_floating_point_v<T>) type = ncclFloat64;
        if constexpr (std::is_integral_v<T>) type = ncclInt64;
        nccl_check(ncclAllReduce(values, values, count, type, mean ? ncclAvg : ncclSum, comm_, stream), "ncclAllReduce");
#endif
    }

    int ranks_ = 1;
#ifdef RETINANET_HAS_NCCL
    ncclComm_t comm_ = nullptr;
#endif
};

}  // namespace retinanet::cuda
