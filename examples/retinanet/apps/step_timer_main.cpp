// retinanet_step_timer: the wall-clock time of the example RetinaNet's training step (forward,
// focal's loss with target assignment, backward, SGD) on synthetic batches, on the CPU or a GPU:
// the focal side of tests/cuda/gpu_check.sh's paper-configuration timing (its torchvision peer is
// benchmarks/peers_retinanet.py --device cuda).
//   retinanet_step_timer --config paper --size 800x1344 --batch 8 --device cuda --steps 5
// Prints one JSON line: {"case", "device", "seconds" (median step), "min_seconds", "steps",
// "images_per_second", "parameters"}. The first two steps warm up (allocator pools, cuBLAS
// heuristics) and are not timed. A timed step runs from the batch staged (its copy to the GPU
// started) to its loss on the host.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <random>
#include <sstream>

#include <focal/core/error.hpp>
#include <focal/retinanet/loss.hpp>
#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "common.hpp"
#include "backend/cuda/cuda_training.hpp"
#include "train/trainer.hpp"
#include "support/check.hpp"

using namespace retinanet;

namespace {

// N normalized-scale random images with three boxes each (as the torchvision peer's synthetic()).
train::batch synthetic_batch(int n, int height, int width, int classes, std::mt19937& rng) {
    train::batch b;
    b.images = cpu::tensor<float>(3, n, height, width, cpu::uninitialized);
    std::normal_distribution<float> pixel(0.0f, 1.0f);
    for (auto& v : b.images.data) v = pixel(rng);
    const float side = static_cast<float>(std::min(height, width));
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (int i = 0; i < n; ++i) {
        std::vector<float> boxes;
        std::vector<std::int64_t> labels;
        for (int k = 0; k < 3; ++k) {
            const float cx = u(rng) * width, cy = u(rng) * height, w = side / 8 + u(rng) * (side / 2 - side / 8),
                        h = side / 8 + u(rng) * (side / 2 - side / 8);
            boxes.insert(boxes.end(), {std::max(0.0f, cx - w / 2), std::max(0.0f, cy - h / 2), std::min<float>(width, cx + w / 2),
                                       std::min<float>(height, cy + h / 2)});
            labels.push_back(static_cast<std::int64_t>(u(rng) * classes) % classes);
        }
        b.boxes.push_back(boxes);
        b.labels.push_back(labels);
        b.image_ids.push_back(i);
        b.scales.push_back(1.0f);
        b.sizes.push_back({height, width});
    }
    return b;
}

}  // namespace

int main(int argc, char** argv) try {
    const apps::arguments args(argc, argv,
                               apps::with_device_options({{"config", "paper | torchvision_v1 | demo | tiny (default paper)"},
                                                          {"size", "HxW of the padded batch (default 800x1344)"},
                                                          {"batch", "images per step (default 8)"},
                                                          {"steps", "timed steps (default 5)"},
                                                          {"classes", "(default: 10 for demo, 3 for tiny, 91 for torchvision_v1, 80 for paper)"},
                                                          {"threads", "CPU threads (default: all cores)"}}),
                               "retinanet_step_timer: time the example RetinaNet's training step");
    if (args.help()) {
        std::cout << args.usage();
        return 0;
    }
    if (args.has("threads")) cpu::set_threads(static_cast<int>(args.integer("threads", 0)));
    const auto device = apps::parse_device("retinanet_step_timer", args);
    const std::string size = args.text("size", "800x1344");
    int height = 0, width = 0;
    char x = 0;
    std::istringstream in(size);
    require(static_cast<bool>(in >> height >> x >> width) && x == 'x' && height > 0 && width > 0, "retinanet_step_timer",
            "--size", "HxW, e.g. 800x1344", "'" + size + "'");
    const int batch = static_cast<int>(args.integer("batch", 8)), steps = static_cast<int>(args.integer("steps", 5));
    require(batch > 0 && steps > 0, "retinanet_step_timer", "--batch and --steps", "positive", batch, " and ", steps);
    const std::string config = args.text("config", "paper");
    // The peers' class counts (benchmarks/peers_retinanet.py): FMNIST-Det's 10, COCO's 80 (91 ids for torchvision_v1).
    const int default_classes = config == "demo" ? 10 : config == "tiny" ? 3 : config == "torchvision_v1" ? 91 : 80;
    const int classes = static_cast<int>(args.integer("classes", default_classes));
    model::retinanet_model<float> net(model::config_by_name(config, classes));
    net.initialize(1);
    train::train_options o;
    o.batch = batch;
    const auto engine = apps::make_engine(net, device, o);
    engine->begin({}, focal::retinanet_loss_state{}.ema);
    std::mt19937 rng(20170807);
    std::vector<double> times;
    for (int i = 0; i < steps + 2; ++i) {
        // Made and staged before the clock starts: the trainer does both on its data thread while
        // the previous step runs (torchvision's timed step starts with its images on the GPU too).
        train::batch b = synthetic_batch(batch, height, width, classes, rng);
        engine->prepare(b);
        const auto start = std::chrono::steady_clock::now();
        engine->gradients(b);
        const auto r = engine->update(1e-4);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        require(std::isfinite(r.loss.classification + r.loss.box), "retinanet_step_timer", "the loss", "finite",
                r.loss.classification + r.loss.box);
        if (i >= 2) times.push_back(s);
        std::cerr << "step " << i << (i < 2 ? " (warm-up)" : "") << ": " << s * 1e3 << " ms, loss " << r.loss.classification + r.loss.box
                  << "\n";
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    std::size_t parameters = 0;
    for (auto* p : net.parameters()) parameters += p->size();
    const nlohmann::json line{{"case", "train_step/" + config + "/" + size + "/batch:" + std::to_string(batch)},
                              {"device", device.describe()},
                              {"seconds", sorted[sorted.size() / 2]},
                              {"min_seconds", sorted.front()},
                              {"steps", steps},
                              {"images_per_second", batch / sorted[sorted.size() / 2]},
                              {"parameters", parameters}};
    std::cout << line.dump() << std::endl;
    return 0;
} catch (const std::exception& e) {
    std::cerr << "retinanet_step_timer: " << e.what() << "\n";
    return 1;
}
