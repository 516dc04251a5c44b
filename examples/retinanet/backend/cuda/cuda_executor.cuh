// The executor (executor.hpp) on an NVIDIA GPU: memory from a stream-ordered pool of its own
// (cudaMallocFromPoolAsync: a freed activation is reused by the next allocation without a device sync),
// each op as one grid-stride kernel, GEMMs by cuBLAS. Everything runs on one stream, in call order.
//
// Convolutions: cuDNN's (cudnn_convolution.cuh) where built with it and asked for, else im2col +
// cuBLAS GEMMs (the layers' own path, which the tests run on the host loop executor).
//
// Precision: the convolution GEMMs use TF32 tensor cores when `tf32` is set (PyTorch's default for
// cuDNN convolutions on Ampere and later: float storage, 10-bit mantissa products, float sums);
// everything else, the losses included, is float32 with double reductions.
#pragma once

#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <focal/core/error.hpp>
#include <focal/cuda/runtime.cuh>

#include "executor.hpp"
#include "ops.hpp"
#include "support/check.hpp"
#if RETINANET_HAS_CUDNN
#include "cudnn_convolution.cuh"
#endif

#define RETINANET_CUBLAS_CHECK(call)                                                                                   \
    do {                                                                                                               \
        const cublasStatus_t retinanet_cublas_status_ = (call);                                                        \
        if (retinanet_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                         \
            throw ::focal::cuda::runtime_error(cudaErrorUnknown, std::string(#call) + " failed at " + __FILE__ + ":" +  \
                                                                     std::to_string(__LINE__) + ": cuBLAS status " +   \
                                                                     std::to_string(static_cast<int>(retinanet_cublas_status_))); \
    } while (0)

namespace retinanet::cuda {

template <class Op>
__global__ void for_each_kernel(index count, Op op) {
    for (index e = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; e < count; e += static_cast<index>(gridDim.x) * blockDim.x)
        op(e);
}

class cuda_executor {
public:
    // cudnn: convolutions by cuDNN (where built with it), else im2col + cuBLAS GEMMs.
    explicit cuda_executor(int device = 0, bool tf32 = true, bool cudnn = true) : device_(device) {
        FOCAL_CUDA_CHECK(cudaSetDevice(device));
        FOCAL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        RETINANET_CUBLAS_CHECK(cublasCreate(&blas_));
        RETINANET_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
        RETINANET_CUBLAS_CHECK(cublasSetMathMode(blas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        // A memory pool of the executor's own that keeps freed memory (the next step allocates the same
        // sizes again) and never hands a block freed on one stream to another stream's allocation
        // before the free has completed (that would make the copy stream wait for the step in progress).
        cudaMemPoolProps props{};
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = device;
        FOCAL_CUDA_CHECK(cudaMemPoolCreate(&pool_, &props));
        std::uint64_t keep = ~std::uint64_t{0};
        FOCAL_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
        int no = 0;
        FOCAL_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolReuseAllowInternalDependencies, &no));
#if RETINANET_HAS_CUDNN
        if (cudnn) cudnn_ = std::make_unique<cudnn_convolution>(stream_, tf32);
#else
        (void)cudnn;
#endif
    }
    ~cuda_executor() {
        cudaStreamSynchronize(stream_);
#if RETINANET_HAS_CUDNN
        cudnn_.reset();
#endif
        cublasDestroy(blas_);
        cudaStreamDestroy(stream_);
        cudaMemPoolDestroy(pool_);  // released once any memory still held elsewhere is freed
    }
    cuda_executor(const cuda_executor&) = delete;
    cuda_executor& operator=(const cuda_executor&) = delete;

    template <class T>
    std::shared_ptr<T> allocate(std::size_t count) const {
        return allocate_on<T>(count, stream_);
    }
    // Allocated in `stream`'s order (another thread's copy stream), freed in this executor's: the
    // user orders this stream after the allocation (an event) before touching the memory.
    template <class T>
    std::shared_ptr<T> allocate_on(std::size_t count, cudaStream_t stream) const {
        void* p = nullptr;
        FOCAL_CUDA_CHECK(cudaMallocFromPoolAsync(&p, (count > 0 ? count : 1) * sizeof(T), pool_, stream));
        const cudaStream_t s = stream_;
        // Freed in stream order: after every kernel already queued that uses it. The executor must
        // outlive the memory (the deleter frees on its stream).
        return std::shared_ptr<T>(static_cast<T*>(p), [s](T* q) { cudaFreeAsync(q, s); });
    }

    // The workspace allocator handed to cuDNN.
    std::function<std::shared_ptr<unsigned char>(std::size_t)> scratch() const {
        return [this](std::size_t bytes) { return allocate<unsigned char>(bytes); };
    }

    template <class Op>
    void for_each(index count, const Op& op) const {
        if (count <= 0) return;
        constexpr int threads = 256;
        const index blocks = std::min<index>((count + threads - 1) / threads, index{1} << 20);
        for_each_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream_>>>(count, op);
        FOCAL_CUDA_CHECK(cudaGetLastError());
    }

    // Row-major C = alpha op(A) op(B) + beta C is column-major C^T = alpha op(B)^T op(A)^T: cuBLAS
    // with the operands swapped.
    void gemm(bool ta, bool tb, index m, index n, index k, float alpha, const float* a, index lda, const float* b, index ldb, float beta,
              float* c, index ldc) const {
        if (m == 0 || n == 0) return;
        constexpr index limit = 2147483647;  // cuBLAS takes int sizes
        require(m <= limit && n <= limit && k <= limit && lda <= limit && ldb <= limit && ldc <= limit, "cuda::cuda_executor::gemm",
                "sizes and leading dimensions", "at most 2^31 - 1", concat(m, " x ", n, " x ", k));
        RETINANET_CUBLAS_CHECK(cublasSgemm(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                                           static_cast<int>(m), static_cast<int>(k), &alpha, b, static_cast<int>(ldb), a,
                                           static_cast<int>(lda), &beta, c, static_cast<int>(ldc)));
    }

    void zero(void* p, std::size_t bytes) const { FOCAL_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_)); }
    void copy(void* dst, const void* src, std::size_t bytes) const {
        FOCAL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    }
    // Pageable host memory: returns once the host buffer may be reused.
    void upload(void* dst, const void* host, std::size_t bytes) const {
        FOCAL_CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_));
        focal::cuda::synchronize(stream_);
    }
    void download(void* host, const void* src, std::size_t bytes) const {
        FOCAL_CUDA_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, stream_));
        focal::cuda::synchronize(stream_);
    }

    // Direct convolutions (conv2d uses them when this is true; im2col + gemm otherwise). Without
    // cuDNN they are not declared, so layers.hpp's direct_convolution_executor is false.
#if RETINANET_HAS_CUDNN
    bool direct_convolution() const noexcept { return cudnn_ != nullptr; }
    void conv_forward(const conv_geometry& g, const float* x, const float* w, float beta, float* y) const {
        cudnn_->forward(g, x, w, beta, y, scratch());
    }
    void conv_backward_data(const conv_geometry& g, const float* dy, const float* w, float* dx) const {
        cudnn_->backward_data(g, dy, w, dx, scratch());
    }
    void conv_backward_filter(const conv_geometry& g, const float* x, const float* dy, float* dw) const {
        cudnn_->backward_filter(g, x, dy, dw, scratch());
    }
#endif

    cudaStream_t stream() const noexcept { return stream_; }
    int device() const noexcept { return device_; }

private:

    int device_;
    cudaStream_t stream_{};
    cudaMemPool_t pool_{};
    cublasHandle_t blas_{};
#if RETINANET_HAS_CUDNN
    std::unique_ptr<cudnn_convolution> cudnn_;
#endif
};

static_assert(executor<cuda_executor>);

}  // namespace retinanet::cuda
