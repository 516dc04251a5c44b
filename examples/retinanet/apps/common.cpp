#include "common.hpp"

#include <charconv>
#include <iostream>

#include "data/coco_dataset.hpp"
#include "data/draw.hpp"
#include "data/fmnist_det.hpp"
#include "data/image.hpp"
#include "support/check.hpp"
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
    require(!images.empty(), "open_dataset", "the image folder of " + spec, "given (--images / --eval-images)", "nothing");
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
    if (!cuda) return "cpu (" + std::to_string(cpu::threads()) + " threads)";
    return cuda::cuda_device_description(gpu.device) + (gpu.cudnn ? ", cuDNN" : ", im2col + cuBLAS") +
           (gpu.tf32 ? " convolutions in tf32" : " convolutions in fp32");
}

namespace {
// The device options' defaults, stated once for the help text and the parsing.
constexpr const char* default_device = "cpu";
constexpr const char* default_precision = "tf32";
constexpr const char* default_conv = "auto";
}  // namespace

std::map<std::string, std::string> with_device_options(std::map<std::string, std::string> known) {
    known.emplace("device", concat("cpu, cuda or cuda:N: the network (and training step) on the GPU (default ", default_device, ")"));
    known.emplace("precision", concat("on CUDA: tf32 (tensor-core convolutions, as PyTorch) or fp32 (default ", default_precision, ")"));
    known.emplace("conv", concat("on CUDA: auto (cuDNN where built with it), cudnn or gemm (im2col + cuBLAS) (default ", default_conv, ")"));
    return known;
}

device_choice parse_device(const std::string& program, const std::string& device, const std::string& precision, const std::string& conv) {
    device_choice d;
    require(precision == "tf32" || precision == "fp32", program, "--precision", "tf32 or fp32", "'" + precision + "'");
    require(conv == "auto" || conv == "cudnn" || conv == "gemm", program, "--conv", "auto, cudnn or gemm", "'" + conv + "'");
    if (conv == "cudnn" && !cuda::cudnn_built())
        fail(program, "--conv", "cudnn in a build with cuDNN", "a build without it (use auto or gemm)");
    d.gpu.tf32 = precision == "tf32";
    d.gpu.cudnn = conv != "gemm" && cuda::cudnn_built();
    if (device == "cpu") return d;
    // "cuda" or "cuda:N" with N a device number.
    int index = 0;
    const bool numbered = device.rfind("cuda:", 0) == 0;
    const char* first = device.data() + 5;
    const char* last = device.data() + device.size();
    const bool valid = device == "cuda" || (numbered && std::from_chars(first, last, index).ptr == last && first != last && index >= 0);
    require(valid, program, "--device", "cpu, cuda or cuda:N", "'" + device + "'");
    std::string why;
    if (!cuda::cuda_available(&why)) fail(program, "--device", "a usable CUDA device for '" + device + "'", why);
    const int count = cuda::cuda_device_count();
    require(index < count, program, "--device", "cuda:0 .. cuda:" + std::to_string(count - 1) + " (the devices present)",
            "'" + device + "'");
    d.cuda = true;
    d.gpu.device = index;
    return d;
}

device_choice parse_device(const std::string& program, const arguments& args) {
    return parse_device(program, args.text("device", default_device), args.text("precision", default_precision),
                        args.text("conv", default_conv));
}

train::batch_detector make_detector(model::retinanet_model<float>& net, const device_choice& device, const train::inference_options& options) {
    if (!device.cuda) return train::make_cpu_detector(net, options);
    return cuda::make_cuda_detector(net, options, device.gpu);
}

std::unique_ptr<train::training_engine> make_engine(model::retinanet_model<float>& net, const device_choice& device,
                                                    const train::train_options& options) {
    if (!device.cuda) return train::make_cpu_engine(net, options);
    return cuda::make_cuda_engine(net, options, device.gpu);
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
