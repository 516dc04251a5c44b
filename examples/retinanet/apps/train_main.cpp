// retinanet_train: trains the example RetinaNet, evaluates it and draws test detections.
//   retinanet_train --config demo --minutes 10 --output runs/demo
//   retinanet_train --config paper --data train.json --images train/ --eval-data val.json --eval-images val/ --iterations 90000
//   mpirun -np 2 retinanet_train --config demo --minutes 10 --output runs/demo2     (data parallel: docs/distributed.md)
#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <focal/eval/coco_eval.hpp>
#include <focal/eval/coco_json.hpp>

#include "arguments.hpp"
#include "common.hpp"
#include "data/coco_dataset.hpp"
#include "distributed/process_group.hpp"
#include "support/check.hpp"
#include "support/discarded_output.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

using namespace retinanet;

namespace {

constexpr const char* program = "retinanet_train";
using model::config_names;

// The training options a configuration starts from: train::train_options's defaults, with the
// small configurations' own. The demo's settings were tuned on FMNIST-Det for its 10-minute budget
// (docs/results.md, "Demo settings at equal iterations"): at ~8,000 iterations gamma 0.5 (the paper's alpha
// 0.5 for it, Table 1b) learns faster than gamma 2, a rate of 0.06 beats 0.04 and 0.08, and scale
// jitter costs more than it gives. train_options' (the paper's) gamma and alpha stay the default
// for every other config.
train::train_options training_defaults(const std::string& config) {
    train::train_options o;
    if (config == "demo") {
        o.schedule.base_lr = 0.06;
        o.focal_gamma = 0.5f;
        o.focal_alpha = 0.5f;
        o.min_scale = o.max_scale = 1.0f;  // no scale jitter
    } else if (config == "tiny") {
        o.schedule.base_lr = 0.04;
    }
    return o;
}

// The command line's options. Each default is stated once: the training's in train::train_options
// (train/trainer.hpp) and training_defaults() above, the program's own here; the help text and the
// parsing read them from there.
struct program_options {
    std::string config = "demo";
    std::string data = "fmnist", images;            // "fmnist" (FMNIST-Det) or a COCO annotations JSON and its image folder
    std::string eval_data = "fmnist", eval_images;  // the same for the evaluation, or "none"
    std::string weights;                            // initial weights (empty: initialized from the seed)
    double minutes = 10;                            // the time budget unless --iterations
    std::filesystem::path runs = "runs";            // the output folder is runs/<config> unless --output
    // The model's settings; unset: the configuration's.
    std::optional<std::array<int, 4>> widths;
    std::optional<int> fpn_channels, head_convs;
    std::optional<double> prior;
    std::optional<int> scale_lr_reference;  // --scale-lr: the batch the learning rate is given for
    train::train_options train = training_defaults(config);
};

// A training option's default for every configuration: train_options' value, then the ones that
// differ, "2; 0.5 for demo".
template <class Get>
std::string per_config(Get get) {
    const auto common = get(train::train_options{});
    std::string text = concat(common);
    const char* separator = "; ";
    for (const char* name : config_names) {
        const auto value = get(training_defaults(name));
        if (value != common) text += concat(std::exchange(separator, ", "), value, " for ", name);
    }
    return text;
}

// The configurations whose training scales images (scale jitter), or those that do not: "demo".
std::string configs_with_jitter(bool jitter) {
    std::string names;
    for (const char* name : config_names)
        if (const auto o = training_defaults(name); (o.max_scale > o.min_scale) == jitter) names += concat(names.empty() ? "" : ", ", name);
    return names;
}

const char* decay_name(train::decay_kind decay) { return decay == train::decay_kind::step ? "step" : "cosine"; }

// "step: x0.1 at 80%", "cosine".
std::string decay_text(const train::lr_schedule& s) {
    std::string text = decay_name(s.decay);
    if (s.decay != train::decay_kind::step) return text;
    text += concat(": x", s.gamma, " at ");
    for (std::size_t i = 0; i < s.steps.size(); ++i) text += concat(i ? ", " : "", s.steps[i] * 100, "%");
    return text;
}

// The help lines of the data, model and output options.
std::map<std::string, std::string> data_and_model_help() {
    const program_options d;
    const train::train_options t;
    std::string configs;
    for (const char* name : config_names) configs += concat(configs.empty() ? "" : " | ", name);
    return {{"config", concat(configs, " (default ", d.config, ")")},
            {"data", concat("fmnist or a COCO annotations JSON (default ", d.data, ")")},
            {"images", "the training images folder (COCO data)"},
            {"eval-data",
             concat("fmnist (FMNIST-Det's test split) or a COCO annotations JSON; 'none' to skip (default ", d.eval_data, ")")},
            {"eval-images", "the evaluation images folder (COCO data)"},
            {"eval-count", concat("images evaluated (default ", t.eval_images, ")")},
            {"eval-every", concat("evaluate every N iterations, 0: at the end only (default ", t.eval_every, ")")},
            {"prior", concat("initial foreground probability of the class bias (default ", model::model_config{}.prior_probability, ")")},
            {"threads", concat("threads per rank, 0: the cores shared by this machine's ranks (default ", t.threads, ")")},
            {"seed", concat("(default ", t.seed, ")")},
            {"output", concat("folder for checkpoint.npz, metrics.json, detections.png (default ", d.runs.string(), "/<config>)")},
            {"resume", "!continue from <output>/checkpoint.npz"},
            {"weights", "initial weights (npz checkpoint or exported torchvision state dict)"},
            {"log-every", concat("(default ", t.log_every, ")")},
            {"checkpoint-every", concat("(default ", t.checkpoint_every, ")")},
            {"widths", "override the backbone widths, e.g. 32,64,128,256"},
            {"fpn-channels", "override the FPN / head channels"},
            {"head-convs", "override the number of head convs"}};
}

// The help lines of data-parallel training (several ranks under mpirun).
std::map<std::string, std::string> data_parallel_help() {
    const train::data_parallel_options p;
    return {{"scale-lr", "REF: linear scaling rule, the learning rate times batch / REF (Goyal et al.)"},
            {"bucket-mb", concat("MB of gradients per allreduce (default ", static_cast<double>(p.bucket_bytes) / (1 << 20), ")")},
            {"no-overlap", "!reduce the gradients after backward, not during it"},
            {"local-positives", "!normalize each rank's loss by its own positives (detectron2), not the batch's (mmdetection)"},
            {"check-replicas", "check every N steps that all ranks' parameters are bitwise identical (default 0: never)"},
            {"reduce-on-one-rank", "!reduce gradients even on one rank (runs the MPI / NCCL path alone; for tests)"}};
}

// The help lines of the schedule, optimizer, loss and augmentation options.
std::map<std::string, std::string> training_help() {
    const program_options d;
    const train::train_options t;
    const auto lr = [](const train::train_options& o) { return o.schedule.base_lr; };
    const auto gamma = [](const train::train_options& o) { return o.focal_gamma; };
    const auto alpha = [](const train::train_options& o) { return o.focal_alpha; };
    const std::string no_jitter = configs_with_jitter(false);
    return {{"iterations", "schedule length in iterations"},
            {"minutes",
             concat("time budget; sets the iterations from the first steps' speed (default ", d.minutes, " unless --iterations)")},
            {"batch", concat("images per step, over all ranks (default ", t.batch, ")")},
            {"lr", concat("base learning rate (default ", per_config(lr), ")")},
            {"momentum", concat("SGD momentum (default ", t.optimizer.momentum, ")")},
            {"weight-decay", concat("(default ", t.optimizer.weight_decay, ")")},
            {"warmup", concat("warmup iterations (default ", t.schedule.warmup_iterations, ")")},
            {"decay", concat("step | cosine (default ", decay_text(t.schedule), ")")},
            {"clip", concat("gradient-norm clipping, 0: off (default ", t.optimizer.clip_norm, ")")},
            {"gamma", concat("focal loss gamma (default ", per_config(gamma), ")")},
            {"alpha", concat("focal loss alpha (default ", per_config(alpha), ")")},
            {"cross-entropy", "!alpha-balanced cross entropy instead of the focal loss"},
            {"no-jitter", concat("!no scale jitter (the default for ", no_jitter, ")")},
            {"jitter", concat("!scale jitter ", t.min_scale, "-", t.max_scale, " (the default for every config but ", no_jitter, ")")}};
}

std::map<std::string, std::string> option_help() {
    auto help = data_and_model_help();
    help.merge(training_help());
    help.merge(data_parallel_help());
    return apps::with_device_options(std::move(help));
}

// --widths "a,b,c,d".
std::array<int, 4> parse_widths(const std::string& text) {
    std::istringstream in(text);
    std::array<int, 4> widths{};
    std::string field;
    for (int& width : widths) {
        require(static_cast<bool>(std::getline(in, field, ',')), program, "--widths", "four widths a,b,c,d", "'" + text + "'");
        width = std::stoi(field);
    }
    return widths;
}

train::decay_kind parse_decay(const std::string& text) {
    require(text == "step" || text == "cosine", program, "--decay", "step or cosine", "'" + text + "'");
    return text == "step" ? train::decay_kind::step : train::decay_kind::cosine;
}

// The program's own options and the model's (the training's start from the configuration's defaults).
program_options parse_program_options(const apps::arguments& args) {
    program_options o;
    o.config = args.text("config", o.config);
    o.train = training_defaults(o.config);
    o.data = args.text("data", o.data);
    o.images = args.text("images", o.images);
    o.eval_data = args.text("eval-data", o.eval_data);
    o.eval_images = args.text("eval-images", o.eval_images);
    o.weights = args.text("weights", o.weights);
    if (args.has("widths")) o.widths = parse_widths(args.text("widths", ""));
    if (args.has("fpn-channels")) o.fpn_channels = static_cast<int>(args.integer("fpn-channels", 0));
    if (args.has("head-convs")) o.head_convs = static_cast<int>(args.integer("head-convs", 0));
    if (args.has("prior")) o.prior = args.number("prior", 0);
    if (args.has("scale-lr")) o.scale_lr_reference = static_cast<int>(args.integer("scale-lr", 0));
    return o;
}

// The training's options, each falling back on the configuration's default in `p.train`.
void parse_training_options(const apps::arguments& args, program_options& p) {
    train::train_options& o = p.train;
    o.iterations = args.integer("iterations", o.iterations);
    o.minutes = args.number("minutes", o.iterations > 0 ? o.minutes : p.minutes);
    o.batch = static_cast<int>(args.integer("batch", o.batch));
    o.threads = static_cast<int>(args.integer("threads", o.threads));
    require(o.threads >= 0, program, "--threads", "non-negative (0: all cores)", o.threads);
    o.seed = static_cast<std::uint64_t>(args.integer("seed", static_cast<long long>(o.seed)));
    o.schedule.base_lr = args.number("lr", o.schedule.base_lr);
    o.schedule.warmup_iterations = args.integer("warmup", o.schedule.warmup_iterations);
    o.schedule.decay = parse_decay(args.text("decay", decay_name(o.schedule.decay)));
    o.optimizer.momentum = args.number("momentum", o.optimizer.momentum);
    o.optimizer.weight_decay = args.number("weight-decay", o.optimizer.weight_decay);
    o.optimizer.clip_norm = args.number("clip", o.optimizer.clip_norm);
    o.focal_gamma = static_cast<float>(args.number("gamma", o.focal_gamma));
    o.focal_alpha = static_cast<float>(args.number("alpha", o.focal_alpha));
    if (args.flag("cross-entropy")) o.focal_loss = false;
    if (args.flag("jitter")) o.min_scale = train::train_options{}.min_scale, o.max_scale = train::train_options{}.max_scale;
    if (args.flag("no-jitter")) o.min_scale = o.max_scale = 1.0f;
    o.output = args.text("output", (p.runs / p.config).string());
    if (args.flag("resume")) o.resume = true;
    o.log_every = args.integer("log-every", o.log_every);
    o.checkpoint_every = args.integer("checkpoint-every", o.checkpoint_every);
    o.eval_every = args.integer("eval-every", o.eval_every);
    o.eval_images = static_cast<std::size_t>(args.integer("eval-count", static_cast<long long>(o.eval_images)));
    if (p.scale_lr_reference) {
        require(*p.scale_lr_reference > 0, program, "--scale-lr", "a positive reference batch", *p.scale_lr_reference);
        o.schedule.base_lr *= static_cast<double>(o.batch) / *p.scale_lr_reference;
    }
}

// Data-parallel options; the ranks `world` joined.
void parse_data_parallel_options(const apps::arguments& args, distributed::process_group& world, train::train_options& o) {
    train::data_parallel_options& p = o.parallel;
    p.group = &world;
    const double bucket_mb = args.number("bucket-mb", static_cast<double>(p.bucket_bytes) / (1 << 20));
    require(bucket_mb > 0, program, "--bucket-mb", "positive", bucket_mb);
    p.bucket_bytes = static_cast<std::size_t>(bucket_mb * (1 << 20));
    if (args.flag("no-overlap")) p.overlap = false;
    if (args.flag("local-positives")) p.global_positives = false;
    p.check_replicas_every = args.integer("check-replicas", p.check_replicas_every);
    if (args.flag("reduce-on-one-rank")) p.reduce_on_one_rank = true;
    // The cores of this machine shared among its ranks.
    if (o.threads == 0 && world.local_size() > 1)
        o.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world.local_size());
}

program_options parse_options(const apps::arguments& args, distributed::process_group& world) {
    program_options o = parse_program_options(args);
    parse_training_options(args, o);
    parse_data_parallel_options(args, world, o.train);
    return o;
}

// The CPU's threads (--threads) and the device the network runs on: with several ranks and
// "--device cuda", each rank's GPU is its index among this machine's ranks.
apps::device_choice choose_device(const apps::arguments& args, const train::train_options& o, const distributed::process_group& world) {
    if (o.threads > 0) cpu::set_threads(o.threads);
    apps::device_choice device = apps::parse_device(program, args);
    if (device.cuda && world.local_size() > 1 && args.text("device", "") == "cuda") {
        const int gpus = cuda::cuda_device_count();
        require(world.local_size() <= gpus, program, "--device cuda", concat("a GPU per rank (", world.local_size(), " ranks on this machine)"),
                concat(gpus, " GPUs"));
        device.gpu.device = world.local_rank();
    }
    return device;
}

struct datasets {
    std::unique_ptr<data::dataset> train;
    std::unique_ptr<data::dataset> eval;  // null: --eval-data none
};

datasets open_datasets(const program_options& o) {
    datasets d;
    d.train = apps::open_dataset(o.data, o.images, true, o.train.seed, 0);
    if (o.eval_data != "none") d.eval = apps::open_dataset(o.eval_data, o.eval_images, false, o.train.seed, o.train.eval_images);
    return d;
}

// The configuration with the training data's classes and the options' changes, initialized from
// the seed or loaded from --weights.
std::unique_ptr<model::retinanet_model<float>> build_model(const program_options& o, const data::dataset& train_data) {
    auto config = model::config_by_name(o.config, static_cast<int>(train_data.class_names().size()));
    if (o.prior) config.prior_probability = *o.prior;
    if (o.widths) config.widths = *o.widths;
    if (o.fpn_channels) config.fpn_channels = *o.fpn_channels;
    if (o.head_convs) config.head_convs = *o.head_convs;
    auto net = std::make_unique<model::retinanet_model<float>>(config);
    net->initialize(o.train.seed);
    if (!o.weights.empty()) train::load_checkpoint(o.weights, net->parameters(), nullptr, nullptr);
    return net;
}

// Trains `net` on the device; the trained parameters are left in `net`.
train::train_result run_training(model::retinanet_model<float>& net, const apps::device_choice& device, const datasets& data,
                                 const program_options& o) {
    std::filesystem::create_directories(o.train.output);
    std::cout << "training '" << o.config << "' (" << net.parameters().size() << " parameter arrays) with batch " << o.train.batch
              << " on " << device.describe() << (train::world_size(o.train.parallel) > 1 ? " per rank" : "") << "\n";
    const auto r = [&] {
        const auto engine = apps::make_engine(net, device, o.train);  // released (with its GPU memory) before evaluation
        return train::train(net, *engine, *data.train, data.eval.get(), o.train);
    }();
    std::cout << std::fixed << std::setprecision(1) << "trained " << r.iterations << " iterations in " << r.seconds << " s ("
              << r.images_per_second << " img/s)\n";
    if (r.reduced_bytes_per_step > 0)
        std::cout << std::setprecision(2) << "gradient allreduce: " << r.reduced_bytes_per_step / 1e6 << " MB per step, "
                  << r.reduction_seconds << " s communicating, " << r.reduction_exposed_seconds << " s of it not hidden by backward ("
                  << std::setprecision(1) << 100.0 * r.reduction_exposed_seconds / std::max(r.seconds, 1e-9) << "% of the run)\n";
    return r;
}

struct evaluation {
    std::vector<train::image_detections> detections;
    std::vector<focal::coco_detection> coco;
    focal::coco_eval_result result;
};

// COCO evaluation of `net` on the first `count` images of `eval_data`, sharded over the ranks;
// rank 0 prints it and holds the detections.
evaluation evaluate_model(model::retinanet_model<float>& net, const apps::device_choice& device, const data::dataset& eval_data,
                          std::size_t count, distributed::process_group& world) {
    train::inference_options io;
    io.progress = [](std::size_t done, std::size_t total) {
        if (done == total || done % 128 == 0) std::cout << "\revaluating " << done << "/" << total << std::flush;
    };
    evaluation e;
    e.detections = train::detect(apps::make_detector(net, device, io), net.config(), eval_data, count, io, &world);
    std::cout << "\n";
    if (!world.is_root()) return e;
    e.coco = train::to_coco(e.detections);
    e.result = focal::coco_evaluate(data::make_coco_ground_truth(eval_data, count), std::span<const focal::coco_detection>(e.coco));
    const auto& s = e.result.stats;
    std::cout << std::fixed << std::setprecision(4) << "AP " << s[0] << "  AP50 " << s[1] << "  AP75 " << s[2] << "  (APs " << s[3]
              << ", APm " << s[4] << ", APl " << s[5] << ")\n";
    return e;
}

// metrics.json (the COCO result and the training's speed), detections.json and detections.png.
void write_results(const std::filesystem::path& output, const data::dataset& eval_data, const evaluation& e, const train::train_result& r) {
    {
        std::ofstream out(output / "metrics.json");
        auto j = focal::coco_eval_result_to_json(e.result);
        j["iterations"] = r.iterations;
        j["seconds"] = r.seconds;
        j["images_per_second"] = r.images_per_second;
        if (r.reduced_bytes_per_step > 0) {
            j["reduced_bytes_per_step"] = r.reduced_bytes_per_step;
            j["reduction_seconds"] = r.reduction_seconds;
            j["reduction_exposed_seconds"] = r.reduction_exposed_seconds;
        }
        out << j.dump(2) << "\n";
    }
    {
        std::ofstream out(output / "detections.json");
        focal::write_coco_results(out, e.coco);
    }
    apps::draw_mosaic(output / "detections.png", eval_data, e.detections, 16, 0.4f, 4);
    std::cout << "wrote " << (output / "metrics.json").string() << ", detections.json, detections.png\n";
}

// Rank 0 prints; the other ranks' standard output is discarded (their errors still reach stderr).
void quiet_unless_root(const distributed::process_group& world) {
    if (!world.is_root()) std::cout.rdbuf(&discarding_buffer());
}

int run(int argc, char** argv, distributed::process_group& world) {
    const apps::arguments args(argc, argv, option_help(), "retinanet_train: train focal's example RetinaNet on the CPU or a GPU");
    if (args.help()) {
        std::cout << args.usage();
        return 0;
    }
    quiet_unless_root(world);
    const program_options options = parse_options(args, world);
    const apps::device_choice device = choose_device(args, options.train, world);
    const datasets data = open_datasets(options);
    const auto net = build_model(options, *data.train);
    const train::train_result trained = run_training(*net, device, data, options);
    if (!data.eval) return 0;
    const evaluation result = evaluate_model(*net, device, *data.eval, options.train.eval_images, world);
    if (world.is_root()) write_results(options.train.output, *data.eval, result, trained);
    return 0;
}

}  // namespace

// An error every rank raised together ends each normally; one rank's own error ends the whole job
// (the others would wait for it in their next collective).
int main(int argc, char** argv) {
    std::unique_ptr<distributed::process_group> world;
    try {
        world = distributed::join_launched_world(argc, argv);
        return run(argc, argv, *world);
    } catch (const std::exception& e) {
        const bool several = world && world->size() > 1;
        std::cerr << "retinanet_train" << (several ? concat(" (rank ", world->rank(), ")") : std::string()) << ": " << e.what() << std::endl;
        if (several && dynamic_cast<const distributed::collective_error*>(&e) == nullptr) world->abort(1);
        return 1;
    }
}
