// focal/cuda/runtime.cuh: CUDA runtime errors as C++ exceptions.
//
//   FOCAL_CUDA_CHECK(cudaMemcpyAsync(...));   throws focal::cuda::runtime_error on failure
//   focal::cuda::synchronize(stream);         the only place focal waits for the device
//
// Bad arguments throw focal::error (std::invalid_argument) before anything is launched; a failure
// the runtime reports (out of memory, a bad launch, an earlier asynchronous fault) throws
// focal::cuda::runtime_error (std::runtime_error) with the call, the file and CUDA's message.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "../config.hpp"

namespace focal::cuda {

class runtime_error : public std::runtime_error {
public:
    runtime_error(cudaError_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
    cudaError_t code() const noexcept { return code_; }

private:
    cudaError_t code_;
};

namespace detail {
[[noreturn]] inline void throw_runtime_error(cudaError_t code, const char* call, const char* file, int line) {
    throw runtime_error(code, std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                                  cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")");
}
}  // namespace detail

}  // namespace focal::cuda

#define FOCAL_CUDA_CHECK(call)                                                                   \
    do {                                                                                         \
        const cudaError_t focal_cuda_status_ = (call);                                           \
        if (focal_cuda_status_ != cudaSuccess)                                                   \
            ::focal::cuda::detail::throw_runtime_error(focal_cuda_status_, #call, __FILE__, __LINE__); \
    } while (0)

namespace focal::cuda {

// Blocks the calling host thread until the stream's work is done; rethrows an asynchronous fault.
inline void synchronize(cudaStream_t stream) { FOCAL_CUDA_CHECK(cudaStreamSynchronize(stream)); }

}  // namespace focal::cuda
