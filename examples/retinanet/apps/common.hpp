// What the example programs share: choosing datasets from the command line, building the model
// (optionally from a checkpoint or imported weights), and drawing detections.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arguments.hpp"
#include "data/sample.hpp"
#include "backend/cuda/cuda_training.hpp"
#include "model/retinanet_model.hpp"
#include "train/evaluate.hpp"

namespace retinanet::apps {

// "fmnist" (FMNIST-Det: the train stream, or the fixed t10k test set of `test_count` images), or a
// COCO annotations JSON with its image folder.
std::unique_ptr<data::dataset> open_dataset(const std::string& spec, const std::string& images, bool train, std::uint64_t seed,
                                            std::size_t test_count);

// The configuration by name with the dataset's class count; loads `weights` (a checkpoint or an
// exported torchvision npz) when not empty.
std::unique_ptr<model::retinanet_model<float>> make_model(const std::string& config, int num_classes, const std::string& weights,
                                                          std::uint64_t seed);

// Where a program runs the network: "--device cpu" (the default), "cuda" or "cuda:N"; on CUDA,
// "--precision tf32" (the default: TF32 tensor-core convolutions, as PyTorch's cuDNN) or "fp32",
// and "--conv auto" (the default: cuDNN where the build has it, else im2col + cuBLAS), "cudnn" or
// "gemm" (im2col + cuBLAS).
struct device_choice {
    bool cuda = false;
    cuda::cuda_options gpu;
    std::string describe() const;  // "cpu (2 threads)", "NVIDIA H100 80GB HBM3 (device 0, 79 GiB), cuDNN convolutions in tf32"
};
// The three options' help lines, added to a program's own.
std::map<std::string, std::string> with_device_options(std::map<std::string, std::string> known);
// Throws focal::error naming `program`'s option for anything else, for "--conv cudnn" in a build
// without cuDNN, and for cuda in a build or on a machine without it (saying which).
device_choice parse_device(const std::string& program, const std::string& device, const std::string& precision, const std::string& conv);
// parse_device from a program's parsed arguments.
device_choice parse_device(const std::string& program, const arguments& args);

// The detector of `net` on `device` (the GPU's holds a copy of the parameters made now). `options`
// must outlive it.
train::batch_detector make_detector(model::retinanet_model<float>& net, const device_choice& device, const train::inference_options& options);
// The training engine of `net` on `device`; `net` and `options` must outlive it.
std::unique_ptr<train::training_engine> make_engine(model::retinanet_model<float>& net, const device_choice& device,
                                                    const train::train_options& options);

// A mosaic PNG of the first images of `data` with their detections drawn (score >= threshold).
void draw_mosaic(const std::filesystem::path& file, const data::dataset& data, const std::vector<train::image_detections>& detections,
                 std::size_t count, float score_threshold, int columns);

}  // namespace retinanet::apps
