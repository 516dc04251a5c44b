#include "common.hpp"

#include <iostream>

#include <focal/core/error.hpp>

#include "data/coco_dataset.hpp"
#include "data/draw.hpp"
#include "data/fmnist_det.hpp"
#include "data/image.hpp"
#include "gpu/cuda_training.hpp"
#include "train/checkpoint.hpp"

namespace retinanet::apps {

std::unique_ptr<data::dataset> open_dataset(const std::string& spec, const std::string& images, bool train, std::uint64_t seed,
                                            std::size_t test_count) {
    if (spec == "fmnist") {
        data::fmnist_det_options options;
        options.seed = seed;
        if (train) return std::make_unique<data::fmnist_det_train>(options);
        options.seed = seed + 1000003;  // the test split has its own seed, never the training stream's
        return std::make_unique<data::fmnist_det_test>(options, test_count);
    }
    focal::detail::require(!images.empty(), "open_dataset", "the image folder of " + spec, "given (--images / --eval-images)", "nothing");
    return std::make_unique<data::coco_dataset>(spec, images);
}

std::unique_ptr<model::retinanet_model<float>> make_model(const std::string& config, int num_classes, const std::string& weights,
                                                          std::uint64_t seed) {
    auto net = std::make_unique<model::retinanet_model<float>>(model::config_by_name(config, num_classes));
    net->initialize(seed);
    if (!weights.empty()) train::load_checkpoint(weights, net->parameters(), nullptr, nullptr);
    return net;
}

std::string device_choice::describe() const {
    if (!cuda) return "cpu (" + std::to_string(nn::threads()) + " threads)";
    return gpu::cuda_device_description(index) + (cudnn ? ", cuDNN" : ", im2col + cuBLAS") +
           (tf32 ? " convolutions in tf32" : " convolutions in fp32");
}

device_choice parse_device(const std::string& device, const std::string& precision, const std::string& program, const std::string& conv) {
    device_choice d;
    focal::detail::require(precision == "tf32" || precision == "fp32", program, "--precision", "tf32 or fp32", "'" + precision + "'");
    focal::detail::require(conv == "cudnn" || conv == "gemm", program, "--conv", "cudnn or gemm", "'" + conv + "'");
    d.tf32 = precision == "tf32";
    d.cudnn = conv == "cudnn" && gpu::cudnn_built();
    if (device == "cpu") return d;
    const bool cuda = device == "cuda" || (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                                           device.find_first_not_of("0123456789", 5) == std::string::npos && device.size() < 9);
    focal::detail::require(cuda, program, "--device", "cpu, cuda or cuda:N", "'" + device + "'");
    d.cuda = true;
    d.index = device.size() > 5 ? std::stoi(device.substr(5)) : 0;
    std::string why;
    if (!gpu::cuda_available(&why)) focal::detail::fail(program, "--device", "a usable CUDA device for '" + device + "'", why);
    return d;
}

train::batch_detector make_detector(model::retinanet_model<float>& net, const device_choice& device, const train::inference_options& options) {
    if (!device.cuda) return train::cpu_detector(net, options);
    return gpu::make_cuda_detector(net, options, {device.index, device.tf32, device.cudnn});
}

void draw_mosaic(const std::filesystem::path& file, const data::dataset& data, const std::vector<train::image_detections>& detections,
                 std::size_t count, float score_threshold, int columns) {
    std::vector<data::image> tiles;
    for (std::size_t i = 0; i < std::min(count, detections.size()); ++i) {
        auto s = data.get(i);
        const auto& d = detections[i];
        data::draw_detections(s.picture, d.boxes, d.labels, d.scores, data.class_names(), score_threshold);
        tiles.push_back(std::move(s.picture));
    }
    if (tiles.empty()) return;
    data::write_png(file, data::tile_images(tiles, columns));
}

}  // namespace retinanet::apps
