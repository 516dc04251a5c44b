// What the example programs share: choosing datasets from the command line, building the model
// (optionally from a checkpoint or imported weights), and drawing detections.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/sample.hpp"
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

// Where a program runs the network: "--device cpu" (the default) or "cuda" / "cuda:N", and for
// CUDA "--precision tf32" (the default: TF32 tensor-core convolutions, as PyTorch's cuDNN) or "fp32"
// and "--conv cudnn" (the default; im2col + cuBLAS in a build without cuDNN) or "gemm".
struct device_choice {
    bool cuda = false;
    int index = 0;
    bool tf32 = true;
    bool cudnn = true;  // --conv cudnn (the default where built with cuDNN) or gemm (im2col + cuBLAS)
    std::string describe() const;  // "cpu (2 threads)", "NVIDIA H100 ... (device 0), tf32"
};
// Throws focal::error naming `program`'s option for anything else, and for cuda in a build or on a
// machine without it (saying which).
device_choice parse_device(const std::string& device, const std::string& precision, const std::string& program,
                           const std::string& conv = "cudnn");

// The detector of `net` on `device` (the GPU's holds a copy of the parameters made now). `options`
// must outlive it.
train::batch_detector make_detector(model::retinanet_model<float>& net, const device_choice& device, const train::inference_options& options);

// A mosaic PNG of the first images of `data` with their detections drawn (score >= threshold).
void draw_mosaic(const std::filesystem::path& file, const data::dataset& data, const std::vector<train::image_detections>& detections,
                 std::size_t count, float score_threshold, int columns);

}  // namespace retinanet::apps
