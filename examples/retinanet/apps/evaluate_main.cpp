// retinanet_evaluate: COCO AP of a checkpoint (or imported weights) on FMNIST-Det's test split or a
// COCO dataset; writes the detections as COCO results JSON.
//   retinanet_evaluate --config demo --weights runs/demo/checkpoint.npz [--data val.json --images val/]
#include <fstream>
#include <iomanip>
#include <iostream>

#include <focal/eval/coco_eval.hpp>
#include <focal/eval/coco_json.hpp>

#include "arguments.hpp"
#include "common.hpp"
#include "data/coco_dataset.hpp"
#include "support/check.hpp"

using namespace retinanet;

int main(int argc, char** argv) try {
    const apps::arguments args(argc, argv,
                               apps::with_device_options({{"config", "the checkpoint's configuration (default demo)"},
                                                          {"weights", "checkpoint or exported torchvision npz (required)"},
                                                          {"data", "fmnist (default: the test split) or a COCO annotations JSON"},
                                                          {"images", "the images folder (COCO data)"},
                                                          {"count", "images evaluated (default 500; 0: all)"},
                                                          {"batch", "images per forward pass (default 8)"},
                                                          {"threads", "(default: all cores)"},
                                                          {"seed", "FMNIST-Det seed (default 1, as retinanet_train)"},
                                                          {"score-threshold", "post-processing score threshold (default 0.05)"},
                                                          {"detections", "where to write the COCO results JSON (default: none)"}}),
                               "retinanet_evaluate: COCO AP of a trained RetinaNet");
    if (args.help()) {
        std::cout << args.usage();
        return 0;
    }
    require(args.has("weights"), "retinanet_evaluate", "--weights", "given", "nothing");
    if (args.has("threads")) cpu::set_threads(static_cast<int>(args.integer("threads", 0)));
    const auto device = apps::parse_device("retinanet_evaluate", args);
    const auto seed = static_cast<std::uint64_t>(args.integer("seed", 1));
    const auto count = static_cast<std::size_t>(args.integer("count", 500));
    const auto data = apps::open_dataset(args.text("data", "fmnist"), args.text("images", ""), false, seed, count ? count : 500);
    auto net = apps::make_model(args.text("config", "demo"), static_cast<int>(data->class_names().size()), args.text("weights", ""), seed);
    train::inference_options o;
    o.batch = static_cast<int>(args.integer("batch", 8));
    o.postprocess.score_threshold = args.number("score-threshold", 0.05);
    o.progress = [](std::size_t done, std::size_t total) { std::cerr << "\revaluating " << done << "/" << total << std::flush; };
    const std::size_t n = count == 0 ? data->size() : std::min(count, data->size());
    std::cerr << "evaluating on " << device.describe() << "\n";
    const auto coco = train::to_coco(train::detect(apps::make_detector(*net, device, o), net->config(), *data, n, o));
    std::cerr << "\n";
    const auto r = focal::coco_evaluate(data::make_coco_ground_truth(*data, n), std::span<const focal::coco_detection>(coco));
    for (std::size_t i = 0; i < r.stats.size(); ++i)
        std::cout << std::left << std::setw(6) << focal::coco_stat_names[i] << std::fixed << std::setprecision(4) << r.stats[i] << "\n";
    if (args.has("detections")) {
        std::ofstream out(args.text("detections", ""));
        focal::write_coco_results(out, coco);
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "retinanet_evaluate: " << e.what() << "\n";
    return 1;
}
