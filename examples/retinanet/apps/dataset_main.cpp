// retinanet_dataset: FMNIST-Det for other tools: COCO exports, a binary sample stream, COCO evaluation.
//   retinanet_dataset export --split test --count 500 --seed 1 --output runs/fmnist_test
//   retinanet_dataset stream --seed 1 [--first K] [--count N] [--augment] | python3 peer.py
//   retinanet_dataset evaluate --ground-truth annotations.json --detections results.json
//
// export: the first N images of a split as DIR/images/<image_id>.png + DIR/annotations.json
//   (data::export_coco: category_id = label + 1, bbox x y w h). The splits are opened by
//   apps::open_dataset, so `--split test --seed S` is exactly the test set `retinanet_train --seed S`
//   evaluates on, and `--split train` the start of its training stream.
//
// stream: FMNIST-Det *train* samples K, K+1, ... (endless unless --count) to stdout, one record each,
//   every field little-endian:
//     int32 width, int32 height, int32 n_boxes
//     uint8 rgb[height][width][3]                      (row-major HWC)
//     n_boxes x { float32 x1, y1, x2, y2; int32 label } (absolute pixels, x2/y2 exclusive; label 0..9)
//   --augment applies retinanet_train's augmentation to sample i (train::training_sample with the
//   default options: model-size resize for the demo config, horizontal flip p = 0.5, scale jitter
//   log-uniform in [0.8, 1.25] with a random crop), so a peer sees the very images
//   retinanet_train's demo run sees.
//
// evaluate: COCO AP / AP50 / AP75 (and APs, APm, APl) of a results JSON against a ground-truth JSON
//   with focal::coco_evaluate (pycocotools' numbers).
#include <bit>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <focal/core/error.hpp>
#include <focal/eval/coco_eval.hpp>
#include <focal/eval/coco_json.hpp>

#include "arguments.hpp"
#include "common.hpp"
#include "data/augment.hpp"
#include "data/coco_dataset.hpp"
#include "data/random.hpp"
#include "train/trainer.hpp"
#include "model/config.hpp"
#include "train/batch.hpp"
#include "support/check.hpp"

using namespace retinanet;

namespace {

constexpr const char* program = "retinanet_dataset";

const char* usage_text =
    "retinanet_dataset: FMNIST-Det exports, sample streams and COCO evaluation\n"
    "  retinanet_dataset export --split test|train --count N --seed S --output DIR\n"
    "  retinanet_dataset stream --seed S [--first K] [--count N] [--augment]\n"
    "  retinanet_dataset evaluate --ground-truth annotations.json --detections results.json";

std::uint64_t seed_option(const apps::arguments& args) { return static_cast<std::uint64_t>(args.integer("seed", 1)); }

long long non_negative(const apps::arguments& args, const char* command, const std::string& name, long long fallback) {
    const long long v = args.integer(name, fallback);
    require(v >= 0, command, "--" + name, "non-negative", v);
    return v;
}

int run_export(int argc, char** argv) {
    const apps::arguments args(argc, argv,
                               {{"split", "test | train (default test)"},
                                {"count", "images written (default 500)"},
                                {"seed", "the retinanet_train --seed whose split this is (default 1)"},
                                {"output", "the folder: images/<id>.png and annotations.json (required)"}},
                               std::string(usage_text) + "\n\nexport: the first N images of an FMNIST-Det split as COCO");
    if (args.help()) {
        std::cout << args.usage();
        return 0;
    }
    const std::string split = args.text("split", "test");
    require(split == "test" || split == "train", "export", "--split", "test or train", "'" + split + "'");
    require(args.has("output"), "export", "--output", "given", "nothing");
    const auto count = static_cast<std::size_t>(non_negative(args, "export", "count", 500));
    const auto data = apps::open_dataset("fmnist", "", split == "train", seed_option(args), count);
    const std::filesystem::path output = args.text("output", "");
    data::export_coco(*data, count, output);
    std::cout << "wrote " << count << " FMNIST-Det " << split << " images to " << (output / "images").string() << " and "
              << (output / "annotations.json").string() << "\n";
    return 0;
}

// Little-endian writers (the record format does not depend on the host).
void put_u32(std::vector<unsigned char>& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void put_i32(std::vector<unsigned char>& out, std::int32_t v) { put_u32(out, static_cast<std::uint32_t>(v)); }
void put_f32(std::vector<unsigned char>& out, float v) { put_u32(out, std::bit_cast<std::uint32_t>(v)); }

int run_stream(int argc, char** argv) {
    const apps::arguments args(argc, argv,
                               {{"seed", "the retinanet_train --seed of the stream (default 1)"},
                                {"first", "index of the first sample (default 0)"},
                                {"count", "samples written (default: endless, until the reader closes the pipe)"},
                                {"augment", "!apply train_options' default flip and scale jitter (the demo itself trains without jitter)"}},
                               std::string(usage_text) +
                                   "\n\nstream: FMNIST-Det train samples as little-endian binary records on stdout:\n"
                                   "  int32 width, height, n_boxes; uint8 rgb[height][width][3];\n"
                                   "  n_boxes x (float32 x1, y1, x2, y2; int32 label)");
    if (args.help()) {
        std::cout << args.usage();
        return 0;
    }
    const std::uint64_t seed = seed_option(args);
    const auto first = static_cast<std::size_t>(non_negative(args, "stream", "first", 0));
    const bool endless = !args.has("count");
    const auto count = static_cast<std::size_t>(non_negative(args, "stream", "count", 0));
    const bool augment = args.flag("augment");
#ifdef SIGPIPE
    std::signal(SIGPIPE, SIG_IGN);  // a closed pipe then fails the write instead of killing the process
#endif
    const auto data = apps::open_dataset("fmnist", "", true, seed, 0);
    const auto config = model::demo_config(static_cast<int>(data->class_names().size()));
    std::vector<unsigned char> record;
    for (std::size_t i = 0; endless || i < count; ++i) {
        const std::size_t index = first + i;
        train::train_options defaults;  // flip 0.5, scale jitter 0.8-1.25
        defaults.seed = seed;
        data::sample s = augment ? train::training_sample(*data, config, defaults, index) : data->get(index);
        const auto& p = s.picture;
        record.clear();
        put_i32(record, p.width);
        put_i32(record, p.height);
        put_i32(record, static_cast<std::int32_t>(s.boxes.size()));
        record.insert(record.end(), p.rgb.begin(), p.rgb.end());
        for (std::size_t b = 0; b < s.boxes.size(); ++b) {
            for (float v : s.boxes[b]) put_f32(record, v);
            put_i32(record, s.labels[b]);
        }
        if (std::fwrite(record.data(), 1, record.size(), stdout) != record.size() || std::fflush(stdout) != 0)
            return 0;  // the reader closed the pipe: a normal end for an endless stream
    }
    return 0;
}

int run_evaluate(int argc, char** argv) {
    const apps::arguments args(argc, argv,
                               {{"ground-truth", "COCO annotations JSON (e.g. an export's annotations.json; required)"},
                                {"detections", "COCO results JSON: [{image_id, category_id, bbox [x, y, w, h], score}] (required)"}},
                               std::string(usage_text) + "\n\nevaluate: COCO AP of detections (focal::coco_evaluate)");
    if (args.help()) {
        std::cout << args.usage();
        return 0;
    }
    require(args.has("ground-truth"), "evaluate", "--ground-truth", "given", "nothing");
    require(args.has("detections"), "evaluate", "--detections", "given", "nothing");
    const auto ground_truth = focal::read_coco_ground_truth(std::filesystem::path(args.text("ground-truth", "")));
    const auto detections = focal::read_coco_results(std::filesystem::path(args.text("detections", "")));
    const auto r = focal::coco_evaluate(ground_truth, std::span<const focal::coco_detection>(detections));
    std::cout << std::fixed << std::setprecision(4) << "AP " << r.stats[0] << "  AP50 " << r.stats[1] << "  AP75 " << r.stats[2]
              << "  (APs " << r.stats[3] << ", APm " << r.stats[4] << ", APl " << r.stats[5] << ")\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "export") return run_export(argc - 1, argv + 1);
    if (command == "stream") return run_stream(argc - 1, argv + 1);
    if (command == "evaluate") return run_evaluate(argc - 1, argv + 1);
    if (command == "-h" || command == "--help" || command == "help") {
        std::cout << usage_text << "\n(--help after a command lists its options)\n";
        return 0;
    }
    fail("main", "the command (first argument)", "export, stream or evaluate (see --help)",
         command.empty() ? std::string("nothing") : "'" + command + "'");
} catch (const focal::error& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
} catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
}
