// retinanet_detect: detections for image files (PNG / JPEG), written as JSON and as PNGs with the
// boxes drawn.
//   retinanet_detect --config demo --weights runs/demo/checkpoint.npz --output out/ a.png b.jpg ...
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "common.hpp"
#include "data/draw.hpp"
#include "data/fmnist_det.hpp"
#include "data/image.hpp"
#include "support/check.hpp"

using namespace retinanet;

int main(int argc, char** argv) try {
    // Image paths are the arguments that do not start with "--" and are not an option's value.
    std::vector<std::string> files;
    std::vector<char*> option_args{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.rfind("--", 0) == 0) {
            option_args.push_back(argv[i]);
            if (a != "--help" && i + 1 < argc) option_args.push_back(argv[++i]);
        } else {
            files.push_back(a);
        }
    }
    const apps::arguments args(static_cast<int>(option_args.size()), option_args.data(),
                               apps::with_device_options({{"config", "the checkpoint's configuration (default demo)"},
                                                          {"weights", "checkpoint or exported torchvision npz (required)"},
                                                          {"classes", "class count of the weights (default 10, FMNIST-Det's)"},
                                                          {"output", "folder for detections.json and the drawn PNGs (default detections/)"},
                                                          {"score-threshold", "lowest score kept and drawn (default 0.3)"},
                                                          {"threads", "(default: all cores)"}}),
                               "retinanet_detect [options] image...: detect objects in images");
    if (args.help() || files.empty()) {
        std::cout << args.usage();
        return files.empty() && !args.help() ? 1 : 0;
    }
    require(args.has("weights"), "retinanet_detect", "--weights", "given", "nothing");
    if (args.has("threads")) cpu::set_threads(static_cast<int>(args.integer("threads", 0)));
    const auto device = apps::parse_device("retinanet_detect", args);
    const int classes = static_cast<int>(args.integer("classes", 10));
    auto net = apps::make_model(args.text("config", "demo"), classes, args.text("weights", ""), 1);
    std::vector<std::string> names = classes == 10 ? data::fashion_mnist_class_names() : std::vector<std::string>{};
    const std::filesystem::path output = args.text("output", "detections");
    std::filesystem::create_directories(output);

    std::vector<data::sample> samples;
    for (std::size_t i = 0; i < files.size(); ++i) {
        data::sample s;
        s.image_id = static_cast<std::int64_t>(i + 1);
        s.picture = data::read_image(files[i]);
        samples.push_back(std::move(s));
    }
    train::inference_options o;
    o.postprocess.score_threshold = args.number("score-threshold", 0.3);
    const auto detections = train::detect(apps::make_detector(*net, device, o), net->config(), samples, o);
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < files.size(); ++i) {
        const auto& d = detections[i];
        nlohmann::json dets = nlohmann::json::array();
        for (std::size_t j = 0; j < d.boxes.size(); ++j)
            dets.push_back({{"box", d.boxes[j]}, {"score", d.scores[j]}, {"label", d.labels[j]},
                            {"name", d.labels[j] < static_cast<int>(names.size()) ? names[d.labels[j]] : std::to_string(d.labels[j])}});
        out.push_back({{"file", files[i]}, {"detections", dets}});
        data::image drawn = samples[i].picture;
        data::draw_detections(drawn, d.boxes, d.labels, d.scores, names, static_cast<float>(o.postprocess.score_threshold));
        const auto png = output / (std::filesystem::path(files[i]).stem().string() + ".detections.png");
        data::write_png(png, drawn);
        std::cout << files[i] << ": " << d.boxes.size() << " detections -> " << png.string() << "\n";
    }
    std::ofstream(output / "detections.json") << out.dump(2) << "\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "retinanet_detect: " << e.what() << "\n";
    return 1;
}
