// Convolutions by cuDNN for cuda_executor (built where CMake finds cuDNN: RETINANET_HAS_CUDNN):
// the kernels torchvision's RetinaNet runs. The activations are NHWC and the weights
// [C_out][k][k][C_in], which are cuDNN's NHWC tensor and filter layouts as they are, so nothing is
// transposed. Algorithms come from cuDNN's heuristics once per shape, the first that fits the
// workspace limit, preferring deterministic ones for the backward passes (a run is then
// reproducible, as on the CPU). Math: TF32 tensor cores allowed (CUDNN_DEFAULT_MATH, PyTorch's
// default) or not (CUDNN_FMA_MATH).
#pragma once

#include <cudnn.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include <focal/cuda/runtime.cuh>

#include "ops.hpp"

#define RETINANET_CUDNN_CHECK(call)                                                                                      \
    do {                                                                                                                 \
        const cudnnStatus_t retinanet_cudnn_status_ = (call);                                                            \
        if (retinanet_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                                             \
            throw ::focal::cuda::runtime_error(cudaErrorUnknown, std::string(#call) + " failed at " + __FILE__ + ":" +    \
                                                                     std::to_string(__LINE__) + ": " +                   \
                                                                     cudnnGetErrorString(retinanet_cudnn_status_));      \
    } while (0)

namespace retinanet::cuda {

class cudnn_convolution {
public:
    cudnn_convolution(cudaStream_t stream, bool tf32) : tf32_(tf32) {
        RETINANET_CUDNN_CHECK(cudnnCreate(&handle_));
        RETINANET_CUDNN_CHECK(cudnnSetStream(handle_, stream));
    }
    ~cudnn_convolution() {
        cache_.clear();
        cudnnDestroy(handle_);
    }
    cudnn_convolution(const cudnn_convolution&) = delete;
    cudnn_convolution& operator=(const cudnn_convolution&) = delete;

    // y = conv(x, w) + beta y.
    template <class Allocate>
    void forward(const conv_geometry& g, const float* x, const float* w, float beta, float* y, Allocate allocate) {
        plan& p = plan_for(g);
        const float alpha = 1.0f;
        auto ws = allocate(p.forward_bytes);
        RETINANET_CUDNN_CHECK(cudnnConvolutionForward(handle_, &alpha, p.x, x, p.w, w, p.conv, p.forward, ws.get(), p.forward_bytes, &beta, p.y, y));
    }
    // dx = conv^T(dy, w).
    template <class Allocate>
    void backward_data(const conv_geometry& g, const float* dy, const float* w, float* dx, Allocate allocate) {
        plan& p = plan_for(g);
        const float alpha = 1.0f, beta = 0.0f;
        auto ws = allocate(p.data_bytes);
        RETINANET_CUDNN_CHECK(
            cudnnConvolutionBackwardData(handle_, &alpha, p.w, w, p.y, dy, p.conv, p.data, ws.get(), p.data_bytes, &beta, p.x, dx));
    }
    // dw += the weight gradient.
    template <class Allocate>
    void backward_filter(const conv_geometry& g, const float* x, const float* dy, float* dw, Allocate allocate) {
        plan& p = plan_for(g);
        const float alpha = 1.0f, beta = 1.0f;
        auto ws = allocate(p.filter_bytes);
        RETINANET_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle_, &alpha, p.x, x, p.y, dy, p.conv, p.filter, ws.get(), p.filter_bytes, &beta,
                                                             p.w, dw));
    }

private:
    static constexpr std::size_t workspace_limit = std::size_t{2} << 30;  // 2 GiB per call

    struct plan {
        cudnnTensorDescriptor_t x{}, y{};
        cudnnFilterDescriptor_t w{};
        cudnnConvolutionDescriptor_t conv{};
        cudnnConvolutionFwdAlgo_t forward{};
        cudnnConvolutionBwdDataAlgo_t data{};
        cudnnConvolutionBwdFilterAlgo_t filter{};
        std::size_t forward_bytes = 0, data_bytes = 0, filter_bytes = 0;
        ~plan() {
            if (x) cudnnDestroyTensorDescriptor(x);
            if (y) cudnnDestroyTensorDescriptor(y);
            if (w) cudnnDestroyFilterDescriptor(w);
            if (conv) cudnnDestroyConvolutionDescriptor(conv);
        }
    };

    // The first algorithm of cuDNN's ranking that succeeded, fits the limit and (when asked) is
    // deterministic; else the first that succeeded and fits.
    template <class Perf>
    static const Perf& choose(const Perf* perf, int count, bool deterministic, const char* what) {
        for (int pass = deterministic ? 0 : 1; pass < 2; ++pass)
            for (int i = 0; i < count; ++i)
                if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= workspace_limit &&
                    (pass == 1 || perf[i].determinism == CUDNN_DETERMINISTIC))
                    return perf[i];
        throw focal::cuda::runtime_error(cudaErrorUnknown, std::string("cuDNN offers no ") + what + " algorithm for this convolution");
    }

    using shape_key = std::tuple<int, int, int, int, int, int, int, int>;

    plan& plan_for(const conv_geometry& g) {
        auto& slot = cache_[shape_key(g.n, g.h, g.w, g.cin, g.cout, g.kernel, g.stride, g.pad)];
        if (slot) return *slot;
        auto p = std::make_unique<plan>();
        RETINANET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
        RETINANET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
        RETINANET_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
        RETINANET_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
        RETINANET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, g.n, g.cin, g.h, g.w));
        RETINANET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, g.n, g.cout, g.ho, g.wo));
        RETINANET_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, g.cout, g.cin, g.kernel, g.kernel));
        RETINANET_CUDNN_CHECK(
            cudnnSetConvolution2dDescriptor(p->conv, g.pad, g.pad, g.stride, g.stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        RETINANET_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, tf32_ ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
        int n = 0, ho = 0, wo = 0, c = 0;
        RETINANET_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &ho, &wo));
        if (n != g.n || c != g.cout || ho != g.ho || wo != g.wo)
            throw focal::cuda::runtime_error(cudaErrorUnknown, "cuDNN's output size of a convolution differs from the layer's");

        constexpr int max_algos = 16;
        int count = 0;
        cudnnConvolutionFwdAlgoPerf_t fwd[max_algos];
        RETINANET_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x, p->w, p->conv, p->y, max_algos, &count, fwd));
        const auto& f = choose(fwd, count, false, "forward");
        p->forward = f.algo;
        RETINANET_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle_, p->x, p->w, p->conv, p->y, p->forward, &p->forward_bytes));
        cudnnConvolutionBwdDataAlgoPerf_t bwd[max_algos];
        RETINANET_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p->w, p->y, p->conv, p->x, max_algos, &count, bwd));
        p->data = choose(bwd, count, true, "backward-data").algo;
        RETINANET_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p->w, p->y, p->conv, p->x, p->data, &p->data_bytes));
        cudnnConvolutionBwdFilterAlgoPerf_t flt[max_algos];
        RETINANET_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p->x, p->y, p->conv, p->w, max_algos, &count, flt));
        p->filter = choose(flt, count, true, "backward-filter").algo;
        RETINANET_CUDNN_CHECK(
            cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p->x, p->y, p->conv, p->w, p->filter, &p->filter_bytes));
        slot = std::move(p);
        return *slot;
    }

    bool tf32_;
    cudnnHandle_t handle_{};
    std::map<shape_key, std::unique_ptr<plan>> cache_;
};

}  // namespace retinanet::cuda
