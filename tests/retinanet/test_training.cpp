// The training loop: the optimizer and schedule against their formulas, learning a small fixed
// dataset to AP50 > 0.9, and checkpoint/resume giving the very weights of an uninterrupted run.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <doctest/doctest.h>
#include <focal/core/error.hpp>

#include "data/fmnist_det.hpp"
#include "distributed/bucket_plan.hpp"
#include "io/npz.hpp"
#include "support/check.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

using namespace retinanet;

namespace {

// A handful of samples in memory, cycled by the trainer.
class fixed_dataset final : public data::dataset {
public:
    explicit fixed_dataset(std::vector<data::sample> s) : samples_(std::move(s)) {}
    std::size_t size() const override { return samples_.size(); }
    data::sample get(std::size_t i) const override { return samples_.at(i); }
    const std::vector<std::string>& class_names() const override { return data::fashion_mnist_class_names(); }

private:
    std::vector<data::sample> samples_;
};

fixed_dataset small_fmnist(std::size_t count, int image_size) {
    data::fmnist_det_options o;
    o.image_size = image_size;
    o.min_side = 16;
    o.max_side = static_cast<float>(image_size) * 0.6f;
    o.max_objects = 3;
    o.seed = 11;
    data::fmnist_det_test test(o, count);
    std::vector<data::sample> s;
    for (std::size_t i = 0; i < count; ++i) s.push_back(test.get(i));
    return fixed_dataset(std::move(s));
}

model::model_config small_config(int image_size) {
    auto c = model::demo_config(10);
    c.name = "small";
    c.fpn_channels = 32;
    c.image_size = c.max_image_size = image_size;
    return c;
}

std::filesystem::path temp_dir(const std::string& name) {
    auto d = std::filesystem::temp_directory_path() / ("focal_test_training_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

}  // namespace

TEST_CASE("learning-rate schedule: linear warmup from the factor, steps, cosine") {
    train::lr_schedule s;
    s.base_lr = 0.1;
    s.warmup_iterations = 100;
    s.warmup_factor = 0.25;
    s.steps = {0.5, 0.75};
    s.gamma = 0.1;
    CHECK(s.at(0, 1000) == doctest::Approx(0.025));
    CHECK(s.at(50, 1000) == doctest::Approx(0.1 * (0.25 * 0.5 + 0.5)));
    CHECK(s.at(100, 1000) == doctest::Approx(0.1));
    CHECK(s.at(499, 1000) == doctest::Approx(0.1));
    CHECK(s.at(500, 1000) == doctest::Approx(0.01));
    CHECK(s.at(750, 1000) == doctest::Approx(0.001));
    s.decay = train::decay_kind::cosine;
    s.final_factor = 0;
    CHECK(s.at(550, 1100) == doctest::Approx(0.05));
    CHECK(s.at(1100, 1100) == doctest::Approx(0.0).scale(1));
}

TEST_CASE("SGD: torch.optim.SGD's momentum and weight decay, global-norm clipping, non-finite gradients skip") {
    cpu::parameter<double> w("w", {2}), g("gn.weight", {1});
    w.value = {1.0, -2.0};
    g.value = {3.0};
    g.decay = false;
    const cpu::parameter_list<double> params{&w, &g};
    train::sgd opt{.momentum = 0.9, .weight_decay = 0.1, .clip_norm = 0};
    std::vector<std::vector<double>> velocity;
    w.grad = {0.5, 0.0};
    g.grad = {-1.0};
    opt.step(params, velocity, 0.1);
    // v = g + wd w; w -= lr v
    CHECK(w.value[0] == doctest::Approx(1.0 - 0.1 * (0.5 + 0.1 * 1.0)));
    CHECK(w.value[1] == doctest::Approx(-2.0 - 0.1 * (0.1 * -2.0)));
    CHECK(g.value[0] == doctest::Approx(3.0 + 0.1));
    const double v0 = 0.5 + 0.1 * 1.0, w0 = w.value[0];
    opt.step(params, velocity, 0.1);
    CHECK(w.value[0] == doctest::Approx(w0 - 0.1 * (0.9 * v0 + 0.5 + 0.1 * w0)));

    train::sgd clip{.momentum = 0, .weight_decay = 0, .clip_norm = 1.0};
    std::vector<std::vector<double>> v2;
    w.value = {0, 0};
    w.grad = {3, 4};
    g.grad = {0};
    CHECK(clip.step(cpu::parameter_list<double>{&w}, v2, 1.0) == doctest::Approx(5.0));
    CHECK(w.value[0] == doctest::Approx(-0.6).epsilon(1e-5));
    CHECK(w.value[1] == doctest::Approx(-0.8).epsilon(1e-5));
    w.grad = {NAN, 1};
    CHECK(std::isnan(clip.step(cpu::parameter_list<double>{&w}, v2, 1.0)));
    CHECK(w.value[1] == doctest::Approx(-0.8).epsilon(1e-5));
}

TEST_CASE("a few hundred iterations learn a small fixed dataset: the loss falls and AP50 > 0.9") {
    cpu::set_threads(2);
    const auto data = small_fmnist(4, 64);
    model::retinanet_model<float> net(small_config(64));
    net.initialize(3);
    train::train_options o;
    o.iterations = 300;
    o.batch = 4;
    o.schedule.base_lr = 0.02;
    o.schedule.warmup_iterations = 50;
    o.schedule.steps = {0.8};
    o.min_scale = o.max_scale = 1.0f;
    o.flip_probability = 0;
    o.log_every = 100;
    std::ostringstream log;
    o.log = &log;
    const auto r = train::train(net, data, nullptr, o);
    INFO(log.str());
    CHECK(r.iterations == 300);
    CHECK(r.final_loss < 0.3);
    const auto result = train::evaluate(net, data, 4);
    INFO("AP " << result.stats[0] << " AP50 " << result.stats[1]);
    CHECK(result.stats[1] > 0.9);
}

TEST_CASE("checkpoint and resume: stopping and resuming gives the weights of an uninterrupted run") {
    cpu::set_threads(2);
    const auto data = small_fmnist(8, 64);
    train::train_options o;
    o.iterations = 8;
    o.batch = 2;
    o.schedule.warmup_iterations = 3;
    o.log_every = 100;
    o.checkpoint_every = 100;
    std::ostringstream log;
    o.log = &log;

    model::retinanet_model<float> straight(small_config(64));
    straight.initialize(5);
    o.output = temp_dir("straight");
    train::train(straight, data, nullptr, o);

    model::retinanet_model<float> first(small_config(64));
    first.initialize(5);
    o.output = temp_dir("resumed");
    int steps = 0;
    const auto r1 = train::train(first, data, nullptr, o, [&] { return steps++ == 3; });
    CHECK(r1.iterations == 3);
    model::retinanet_model<float> second(small_config(64));
    second.initialize(99);  // overwritten by the checkpoint
    o.resume = true;
    const auto r2 = train::train(second, data, nullptr, o);
    CHECK(r2.iterations == 5);
    auto& a = straight.parameters();
    auto& b = second.parameters();
    REQUIRE(a.size() == b.size());
    std::size_t differing = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = 0; j < a[i]->size(); ++j) differing += a[i]->value[j] != b[i]->value[j];
    CHECK(differing == 0);

    // A checkpoint of another model is refused by name, before anything is overwritten.
    model::retinanet_model<float> other(model::tiny_config(3));
    const auto before = other.parameters()[0]->value;
    CHECK_THROWS_WITH_AS(train::load_checkpoint(o.output / "checkpoint.npz", other.parameters(), nullptr, nullptr),
                         doctest::Contains("of shape"), focal::error);
    CHECK(other.parameters()[0]->value == before);
    std::filesystem::remove_all(o.output);
}

namespace {

// The weights after a few iterations from a fixed seed on `threads` threads (through the
// data-parallel path on one process with `parallel`).
std::vector<std::vector<float>> weights_after_training(int threads, std::uint64_t seed, train::data_parallel_options parallel = {}) {
    cpu::set_threads(threads);
    const auto data = small_fmnist(8, 64);
    model::retinanet_model<float> net(small_config(64));
    net.initialize(seed);
    train::train_options o;
    o.iterations = 6;
    o.batch = 4;
    o.seed = seed;
    o.threads = threads;
    o.schedule.warmup_iterations = 2;
    o.log_every = 100;
    o.parallel = parallel;
    std::ostringstream log;
    o.log = &log;
    train::train(net, data, nullptr, o);
    std::vector<std::vector<float>> w;
    for (const auto* p : net.parameters()) w.push_back(p->value);
    return w;
}

std::size_t differing_values(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = 0; j < a[i].size(); ++j) n += std::memcmp(&a[i][j], &b[i][j], sizeof(float)) != 0;
    return n;
}

}  // namespace

TEST_CASE("determinism: the same seed gives bit-identical training, on any number of threads") {
    const auto two = weights_after_training(2, 7);
    CHECK(differing_values(two, weights_after_training(2, 7)) == 0);
    // Every parallel split (GEMM blocks, weight-gradient slices, per-image normalization, focal's
    // loss blocks) depends on the sizes only, so the thread count does not change a bit either.
    CHECK(differing_values(two, weights_after_training(1, 7)) == 0);
    CHECK(differing_values(two, weights_after_training(3, 7)) == 0);
    // The seed matters: another one gives other weights (the check above is not vacuous).
    CHECK(differing_values(two, weights_after_training(2, 8)) > 0);
    // One process through the data-parallel path (gradient signals, bucketed reducer, summed
    // counts over a group of one): an average over one rank changes no bit.
    const auto alone = distributed::single_process();
    train::data_parallel_options p;
    p.group = alone.get();
    p.reduce_on_one_rank = true;
    p.bucket_bytes = 4096;  // many buckets
    p.check_replicas_every = 1;
    CHECK(differing_values(two, weights_after_training(2, 7, p)) == 0);
    cpu::set_threads(2);
}

namespace {

std::string file_bytes(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream(file, std::ios::binary) << bytes;
}

std::string load_error(const std::filesystem::path& file, const cpu::parameter_list<float>& params) {
    std::vector<std::vector<float>> velocity;
    train::run_state state;
    try {
        train::load_checkpoint(file, params, &velocity, &state);
    } catch (const focal::error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("gradient buckets: packed to the cap in order, released in bucket order whatever order gradients finish in") {
    // Gradients of 4, 4, 10, 1, 1, 3 values with a cap of 8: {0, 1} {2} {3, 4, 5}.
    const std::vector<std::size_t> sizes{4, 4, 10, 1, 1, 3};
    const auto plan = distributed::plan_buckets(sizes, 8);
    REQUIRE(plan.members.size() == 3);
    CHECK(plan.members[0] == std::vector<std::size_t>{0, 1});
    CHECK(plan.members[1] == std::vector<std::size_t>{2});  // larger than the cap: alone
    CHECK(plan.members[2] == std::vector<std::size_t>{3, 4, 5});
    CHECK(plan.bucket_of == std::vector<std::size_t>{0, 0, 1, 2, 2, 2});
    distributed::bucket_release release(plan);
    CHECK(release.ready(3).empty());
    CHECK(release.ready(4).empty());
    CHECK(release.ready(5).empty());  // bucket 2 is complete, but waits for buckets 0 and 1
    CHECK(release.ready(2).empty());
    CHECK(release.ready(0).empty());
    CHECK(release.ready(0).empty());  // twice: no change
    CHECK(release.ready(1) == std::vector<std::size_t>{0, 1, 2});
    CHECK(release.released() == 3);
    release.reset();
    CHECK(release.ready(1).empty());
    CHECK(release.ready_all() == std::vector<std::size_t>{0, 1, 2});
    CHECK(release.ready_all().empty());
    CHECK_THROWS_AS(release.ready(6), focal::error);
    CHECK_THROWS_AS(distributed::plan_buckets(sizes, 0), focal::error);
}

TEST_CASE("checkpoint files: truncated, corrupted or foreign files are clear errors that change nothing") {
    cpu::set_threads(2);
    const auto data = small_fmnist(4, 64);
    const auto dir = temp_dir("corrupt");
    train::train_options o;
    o.iterations = 2;
    o.batch = 2;
    o.output = dir;
    o.log_every = 100;
    std::ostringstream log;
    o.log = &log;
    model::retinanet_model<float> trained(small_config(64));
    trained.initialize(5);
    train::train(trained, data, nullptr, o);
    const auto good = dir / "checkpoint.npz";
    const std::string bytes = file_bytes(good);
    REQUIRE(bytes.size() > 1000);

    model::retinanet_model<float> net(small_config(64));
    net.initialize(6);
    std::vector<std::vector<float>> before;
    for (const auto* p : net.parameters()) before.push_back(p->value);
    const auto unchanged = [&] {
        for (std::size_t i = 0; i < before.size(); ++i)
            if (net.parameters()[i]->value != before[i]) return false;
        return true;
    };
    const auto bad = dir / "bad.npz";

    write_file(bad, bytes.substr(0, bytes.size() / 2));
    CHECK(load_error(bad, net.parameters()).find("bad.npz' is not a zip archive") != std::string::npos);
    CHECK(unchanged());

    std::string flipped = bytes;
    flipped[bytes.size() / 3] = static_cast<char>(flipped[bytes.size() / 3] ^ 0x10);
    write_file(bad, flipped);
    CHECK(load_error(bad, net.parameters()).find("bad.npz'") != std::string::npos);
    CHECK(unchanged());

    write_file(bad, "{\"images\": []}\n");
    CHECK(load_error(bad, net.parameters()).find("is not a zip archive") != std::string::npos);
    CHECK(unchanged());

    // Valid archives with bad content, each refused before any parameter is overwritten.
    const auto original = io::read_npz(good);
    const auto with = [&](const std::function<void(io::npz_archive&)>& edit) {
        auto a = original;
        edit(a);
        io::write_npz(bad, a);
        return load_error(bad, net.parameters());
    };
    const std::string last_name = net.parameters().back()->name;
    CHECK(with([&](io::npz_archive& a) {
              auto& p = a.at(last_name);
              const auto& v = p.as_float32();
              p.values = std::vector<double>(v.begin(), v.end());
          }).find("'" + last_name + "'") != std::string::npos);
    CHECK(with([](io::npz_archive& a) { a["run.iteration"] = {{}, std::vector<std::int64_t>{-4}}; }).find("non-negative") !=
          std::string::npos);
    CHECK(with([](io::npz_archive& a) { a["run.loss_normalizer"] = {{}, std::vector<double>{NAN}}; }).find("positive and finite") !=
          std::string::npos);
    CHECK(with([](io::npz_archive& a) { a["run.config_name"] = {{2}, std::vector<std::int64_t>{65, 0}}; }).find("printable ASCII") !=
          std::string::npos);
    CHECK(with([](io::npz_archive& a) { a.erase("run.total_iterations"); }).find("no 'run.total_iterations'") != std::string::npos);
    CHECK(with([&](io::npz_archive& a) { a.at("optimizer." + last_name).shape = {a.at(last_name).size(), 1}; })
              .find("optimizer." + last_name) != std::string::npos);
    CHECK(with([](io::npz_archive& a) { a["extra.weight"] = {{1}, std::vector<float>{1}}; }).find("extra.weight") != std::string::npos);
    CHECK(unchanged());
    // The good file still loads.
    CHECK(load_error(good, net.parameters()) == "no error");
    CHECK(net.parameters()[0]->value == trained.parameters()[0]->value);

    // Resuming from a corrupted checkpoint stops with the error and leaves the file as it was.
    write_file(good, flipped);
    o.resume = true;
    o.iterations = 4;
    model::retinanet_model<float> resumed(small_config(64));
    CHECK_THROWS_WITH_AS(train::train(resumed, data, nullptr, o), doctest::Contains("checkpoint.npz'"), focal::error);
    CHECK(file_bytes(good) == flipped);
    std::filesystem::remove_all(dir);
}

namespace {
// Records how the loop drives an engine (the CUDA engine's contract, checked without a GPU).
class recording_engine final : public train::training_engine {
public:
    explicit recording_engine(model::retinanet_model<float>& net) : net_(net) {}
    void begin(const std::vector<std::vector<float>>& velocity, double normalizer) override {
        begun_velocity = velocity.size();
        begun_normalizer = normalizer;
    }
    void prepare(train::batch& b) override {
        ++prepared;
        b.staged = std::make_shared<int>(prepared);
    }
    void gradients(const train::batch& b) override {
        REQUIRE(b.staged != nullptr);
        staged_order.push_back(*std::static_pointer_cast<int>(b.staged));
    }
    train::step_result update(double lr) override {
        lrs.push_back(lr);
        trained += 1.0f;  // the engine's own parameter state, published only by to_host
        return {{classification_loss, 0.5, 3}, gradient_norm};
    }
    double to_host(std::vector<std::vector<float>>& velocity) override {
        ++to_host_calls;
        velocity.clear();
        for (auto* p : net_.parameters()) {
            p->value[0] = trained;
            velocity.emplace_back(p->size(), 0.25f);
        }
        return 42.0;
    }
    focal::coco_eval_result evaluate(const data::dataset&, std::size_t) override { return {}; }

    std::size_t begun_velocity = 99;
    double begun_normalizer = 0;
    int prepared = 0, to_host_calls = 0;
    std::vector<int> staged_order;
    std::vector<double> lrs;
    float trained = 0;
    double classification_loss = 1.0, gradient_norm = 2.0;  // what update() reports

private:
    model::retinanet_model<float>& net_;
};
}  // namespace

TEST_CASE("the training loop drives any engine: staged batches in order, the schedule's rates, checkpoints through to_host, resume") {
    const auto data = small_fmnist(4, 64);
    const auto dir = temp_dir("engine");
    model::retinanet_model<float> net(small_config(64));
    train::train_options o;
    o.iterations = 4;
    o.batch = 2;
    o.schedule.warmup_iterations = 2;
    o.output = dir;
    o.checkpoint_every = 2;
    std::ostringstream log;
    o.log = &log;
    recording_engine engine(net);
    // Stopped after two of four steps, then resumed.
    const auto r = train::train(net, engine, data, nullptr, o, [&] { return engine.staged_order.size() >= 2; });
    CHECK(r.iterations == 2);
    CHECK(engine.begun_velocity == 0);  // a fresh run: no velocities
    CHECK(engine.begun_normalizer == 100.0);
    CHECK(engine.staged_order == std::vector<int>{1, 2});  // each batch prepared once, in order, before its step
    REQUIRE(engine.lrs.size() == 2);
    for (int i = 0; i < 2; ++i) CHECK(engine.lrs[static_cast<std::size_t>(i)] == doctest::Approx(o.schedule.at(i, 4)));
    CHECK(engine.to_host_calls == 2);  // the checkpoint at 2 and the one on stopping
    CHECK(r.final_loss == doctest::Approx(1.5));

    model::retinanet_model<float> loaded(small_config(64));
    std::vector<std::vector<float>> velocity;
    train::run_state state;
    REQUIRE(train::load_checkpoint(dir / "checkpoint.npz", loaded.parameters(), &velocity, &state));
    CHECK(state.iteration == 2);
    CHECK(state.loss_normalizer == 42.0);
    CHECK(velocity.front().front() == 0.25f);
    CHECK(loaded.parameters().front()->value[0] == 2.0f);  // two updates, taken to the host and the file by to_host

    o.resume = true;
    recording_engine resumed(net);
    CHECK(train::train(net, resumed, data, nullptr, o).iterations == 2);
    CHECK(resumed.begun_normalizer == 42.0);
    CHECK(resumed.begun_velocity == net.parameters().size());
    REQUIRE(resumed.lrs.size() == 2);
    for (int i = 0; i < 2; ++i) CHECK(resumed.lrs[static_cast<std::size_t>(i)] == doctest::Approx(o.schedule.at(i + 2, 4)));
    std::filesystem::remove_all(dir);
}

TEST_CASE("a diverged run stops with the step's loss, iteration and gradient norm") {
    const auto data = small_fmnist(4, 64);
    model::retinanet_model<float> net(small_config(64));
    train::train_options o;
    o.iterations = 4;
    o.batch = 2;
    std::ostringstream log;
    o.log = &log;
    recording_engine engine(net);
    engine.classification_loss = NAN;
    CHECK_THROWS_WITH_AS(train::train(net, engine, data, nullptr, o),
                         "train: the loss must be finite (training diverged), got nan at iteration 0, gradient norm 2: "
                         "lower the learning rate or raise warmup",
                         focal::error);
    engine.classification_loss = 1.0;
    engine.gradient_norm = INFINITY;
    CHECK_THROWS_WITH_AS(train::train(net, engine, data, nullptr, o),
                         "train: the loss must be finite (training diverged), got 1.5 at iteration 0, gradient norm inf: "
                         "lower the learning rate or raise warmup",
                         focal::error);
    CHECK(engine.to_host_calls == 0);  // nothing was saved
}

TEST_CASE("train_options: one default per option, retinanet_train's") {
    const train::train_options o;
    CHECK(o.checkpoint_every == 200);  // the interval retinanet_train has always used
    CHECK(o.eval_images == 500);
    CHECK(o.log_every == 20);
    CHECK(o.eval_every == 0);
    CHECK(o.batch == 16);
    CHECK(o.seed == 1);
    CHECK(o.threads == 0);
    CHECK(o.schedule.base_lr == 0.01);
    CHECK(o.schedule.warmup_iterations == 300);
    CHECK(o.schedule.decay == train::decay_kind::step);
    CHECK(o.schedule.steps == std::vector<double>{0.8});
    CHECK(o.schedule.gamma == 0.1);
    CHECK(o.optimizer.momentum == 0.9);
    CHECK(o.optimizer.weight_decay == 1e-4);
    CHECK(o.optimizer.clip_norm == 0);
    CHECK(o.focal_gamma == 2.0f);
    CHECK(o.focal_alpha == 0.25f);
    CHECK(o.focal_loss);
    CHECK((o.min_scale == 0.8f && o.max_scale == 1.25f));
}

TEST_CASE("support/check.hpp: the example's checks throw focal::error in focal's message form") {
    CHECK(retinanet::concat("[", 3, " x ", 4.5, "]") == "[3 x 4.5]");
    CHECK_NOTHROW(retinanet::require(true, "f", "x", "positive", -1));
    CHECK_THROWS_WITH_AS(retinanet::require(false, "f", "x", "positive", -1), "f: x must be positive, got -1", focal::error);
    CHECK_THROWS_WITH_AS(retinanet::fail("retinanet_train", "--decay", "step or cosine", "'linear'"),
                         "retinanet_train: --decay must be step or cosine, got 'linear'", focal::error);
    // The same text as focal's own checks.
    std::string focal_message;
    try {
        focal::detail::fail("f", "x", "positive", -1);
    } catch (const focal::error& e) {
        focal_message = e.what();
    }
    CHECK(focal_message == "f: x must be positive, got -1");
    CHECK(retinanet::concat(0.1, " ", 1e-300) == focal::detail::concat(0.1, " ", 1e-300));  // 17 digits, as focal's
}
