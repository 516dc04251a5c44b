// The example RetinaNet on an NVIDIA GPU, for the programs (plain C++: no CUDA header here).
//   - make_cuda_engine: train::train's loop with every step on the GPU: the network (gpu/network.hpp
//     on cuda_executor.cuh), target assignment, the focal and box losses and their gradients
//     (focal::cuda), SGD; batches are made on the data thread, staged in pinned memory and copied
//     on a second stream while the previous step computes. The host model is only touched for
//     checkpoints and evaluation, so checkpoints are the CPU trainer's own.
//   - make_cuda_detector: inference and focal::cuda::postprocess (a batch) on the GPU, for
//     train::detect / train::evaluate.
// In a build without CUDA (no nvcc found, or FOCAL_BUILD_CUDA=OFF) cuda_available() says why and
// the factories throw focal::error.
#pragma once

#include <memory>
#include <string>

#include "train/evaluate.hpp"
#include "train/trainer.hpp"

namespace retinanet::cuda {

struct cuda_options {
    int device = 0;
    // TF32 tensor cores for the convolutions' GEMMs (PyTorch's default for cuDNN convolutions);
    // false: full float32 products. The losses are float32 either way.
    bool tf32 = true;
    // Convolutions by cuDNN (where the build has it; cudnn_built()); false: im2col + cuBLAS GEMMs.
    bool cudnn = true;
};

// Whether this build has CUDA and a device is present; otherwise `why` (when given) says which.
bool cuda_available(std::string* why = nullptr);
// The number of CUDA devices present (0 without CUDA).
int cuda_device_count();
// "NVIDIA H100 80GB HBM3 (device 0, 79 GiB)" for the progress lines.
std::string cuda_device_description(int device);
// Whether this build's CUDA trainer has cuDNN's convolutions.
bool cudnn_built();

std::unique_ptr<train::training_engine> make_cuda_engine(model::retinanet_model<float>& net, const train::train_options& options,
                                                         const cuda_options& cuda = {});
// The detector keeps a copy of the network's parameters made now (create it after loading them).
train::batch_detector make_cuda_detector(model::retinanet_model<float>& net, const train::inference_options& options,
                                         const cuda_options& cuda = {});

}  // namespace retinanet::cuda
