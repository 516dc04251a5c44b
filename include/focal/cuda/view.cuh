// focal/cuda/view.cuh: views over device memory, and an owning buffer for tests and examples.
//
// focal::view<T, R, focal::device_space> is the same pointer + extents + strides as a host view,
// but only the CUDA entry points accept it, and host algorithms reject it at compile time (and
// the reverse). Make one with focal::make_device_view(ptr, extents...).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "../core/checks.hpp"
#include "../core/view.hpp"
#include "runtime.cuh"

namespace focal::cuda {

template <class T>
using device_vector_view = vector_view<T, device_space>;
template <class T>
using device_matrix_view = matrix_view<T, device_space>;
template <class T>
using device_tensor3_view = tensor3_view<T, device_space>;

// Owning device memory (cudaMalloc / cudaFree): a convenience for tests, benchmarks and examples.
// The entry points never need one: they take views over any device memory.
template <class T>
class device_buffer {
public:
    device_buffer() = default;
    explicit device_buffer(std::size_t count) : count_(count) {
        if (count) FOCAL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
    }
    explicit device_buffer(const std::vector<T>& host) : device_buffer(host.size()) { copy_from(host); }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;
    device_buffer(device_buffer&& other) noexcept : data_(other.data_), count_(other.count_) {
        other.data_ = nullptr;
        other.count_ = 0;
    }
    device_buffer& operator=(device_buffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = other.data_;
            count_ = other.count_;
            other.data_ = nullptr;
            other.count_ = 0;
        }
        return *this;
    }
    ~device_buffer() { release(); }

    T* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return count_; }

    // Synchronous copies (cudaMemcpy), sizes checked.
    void copy_from(const std::vector<T>& host) {
        focal::detail::require(host.size() == count_, "focal::cuda::device_buffer::copy_from", "host.size()",
                               "the buffer's size " + std::to_string(count_), host.size());
        if (count_) FOCAL_CUDA_CHECK(cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
    }
    std::vector<T> to_host() const {
        std::vector<T> host(count_);
        if (count_) FOCAL_CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
        return host;
    }

    device_vector_view<T> view() const noexcept { return device_vector_view<T>(data_, static_cast<index_t>(count_)); }
    // A row-major rows x cols view; rows * cols must equal size().
    device_matrix_view<T> view(index_t rows, index_t cols) const {
        focal::detail::require(rows >= 0 && cols >= 0 && static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) == count_,
                               "focal::cuda::device_buffer::view", "rows * cols", "the buffer's size " + std::to_string(count_),
                               rows, " * ", cols);
        return device_matrix_view<T>(data_, rows, cols);
    }

private:
    void release() noexcept {
        if (data_) cudaFree(data_);
        data_ = nullptr;
        count_ = 0;
    }
    T* data_ = nullptr;
    std::size_t count_ = 0;
};

}  // namespace focal::cuda
