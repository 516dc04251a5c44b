// cuda_training.hpp on a GPU: the training engine and the detector.
#include "cuda_training.hpp"
#include "support/check.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <focal/cuda.cuh>
#include <focal/retinanet.hpp>

#include "cuda_executor.cuh"
#include "distributed/bucket_plan.hpp"
#include "nccl_reduction.cuh"
#include "network.hpp"
#include "optimizer.hpp"
#include "train/batch.hpp"

namespace retinanet::cuda {
namespace {

template <class T>
using view3 = focal::cuda::device_tensor3_view<T>;
template <class T>
using matrix = focal::cuda::device_matrix_view<T>;
template <class T>
using vector = focal::cuda::device_vector_view<T>;
using gpu_network = network<cuda_executor>;

void require_device(const char* where) {
    std::string why;
    if (!cuda_available(&why)) fail(where, "device", "a usable CUDA device", why);
}

// Anchors per padded image size, generated on the host once and kept on the device (the first
// step of each size waits for that upload).
class device_anchor_cache {
public:
    const float* get(cuda_executor& executor, const model::retinanet_model<float>& host, focal::size2d image,
                     const std::vector<focal::size2d>& grids) {
        auto& entry = cache_[{image.height, image.width}];
        if (!entry) {
            const auto values = host.anchors(image, grids);
            entry = executor.allocate<float>(values.size());
            executor.upload(entry.get(), values.data(), values.size() * sizeof(float));
        }
        return entry.get();
    }

private:
    std::map<std::pair<focal::index_t, focal::index_t>, std::shared_ptr<float>> cache_;
};

// Scratch memory for focal::cuda's drivers (each asks for its workspace size).
focal::cuda::workspace workspace_of(cuda_executor& executor, std::shared_ptr<unsigned char>& memory, std::size_t& capacity, std::size_t bytes) {
    if (capacity < bytes) memory = executor.allocate<unsigned char>(bytes), capacity = bytes;
    return {memory.get(), bytes};
}

// One batch's post-processed detections, computed on the GPU and returned on the host.
train::batch_detections detect_batch(cuda_executor& executor, gpu_network& net, device_anchor_cache& anchors, const train::batch& b,
                                     const train::inference_options& options) {
    const auto& config = net.host().config();
    device_tensor images = net.ctx().tensor(3, b.images.n, b.images.h, b.images.w);
    executor.upload(images.get(), b.images.data.data(), b.images.data.size() * sizeof(float));
    struct inference_mode {  // no forward state kept, restored however the scope ends
        gpu_network& net;
        explicit inference_mode(gpu_network& n) : net(n) { net.set_grad_enabled(false); }
        ~inference_mode() { net.set_grad_enabled(true); }
    };
    const auto out = [&] {
        const inference_mode guard(net);
        return net.forward(images);
    }();
    const float* anchor_data = anchors.get(executor, net.host(), b.padded(), out.grids);
    std::vector<focal::index_t> per_level;
    for (const auto& g : out.grids) per_level.push_back(g.height * g.width * config.anchors_per_cell());
    const auto n = static_cast<focal::index_t>(out.batch), d = options.postprocess.capacity();
    const auto rows = static_cast<std::size_t>(n * d);
    const auto boxes = executor.allocate<float>(rows * 4), scores = executor.allocate<float>(rows);
    const auto labels = executor.allocate<std::int64_t>(rows), counts = executor.allocate<std::int64_t>(static_cast<std::size_t>(n));
    std::shared_ptr<unsigned char> ws_memory;
    std::size_t ws_capacity = 0;
    const auto ws = workspace_of(executor, ws_memory, ws_capacity,
                                 focal::cuda::postprocess_workspace_size(options.postprocess, n, out.anchors, out.classes, per_level));
    focal::cuda::postprocess(options.postprocess, view3<const float>(out.cls_logits.get(), n, out.anchors, out.classes),
                             view3<const float>(out.bbox_regression.get(), n, out.anchors, 4), matrix<const float>(anchor_data, out.anchors, 4),
                             std::span<const focal::index_t>(per_level), std::span<const focal::image_size>(b.sizes),
                             focal::batch_detections_output{view3<float>(boxes.get(), n, d, 4), matrix<float>(scores.get(), n, d),
                                                            matrix<std::int64_t>(labels.get(), n, d), vector<std::int64_t>(counts.get(), n)},
                             ws, executor.stream());
    train::batch_detections r(static_cast<std::size_t>(n), static_cast<std::size_t>(d));
    executor.download(r.boxes.data(), boxes.get(), r.boxes.size() * sizeof(float));
    executor.download(r.scores.data(), scores.get(), r.scores.size() * sizeof(float));
    executor.download(r.labels.data(), labels.get(), r.labels.size() * sizeof(std::int64_t));
    executor.download(r.counts.data(), counts.get(), r.counts.size() * sizeof(std::int64_t));
    return r;
}

// A batch on its way to the GPU (train::batch::staged): device copies of the images and the
// ground truth, padded to the batch's most boxes, and the event that marks the copy done.
struct staged_batch {
    int n = 0, h = 0, w = 0, max_boxes = 1;
    std::shared_ptr<float> images, boxes;              // [N][H][W][3], [N][Gmax][4]
    std::shared_ptr<std::int64_t> labels;              // [N][Gmax]
    std::shared_ptr<std::int32_t> counts;              // [N]
    cudaEvent_t copied{};
    bool consumed = false;  // the compute stream waited for the copy
    // The buffers are freed in the compute stream's order, which a batch that was prefetched but
    // never used has no dependency on: its copy must be done first.
    ~staged_batch() {
        if (copied && !consumed) cudaEventSynchronize(copied);
        if (copied) cudaEventDestroy(copied);
    }
};

// Page-locked staging for the asynchronous copies, two slots used in turn; a slot is refilled once
// its previous copy is done.
class pinned_ring {
public:
    ~pinned_ring() {
        for (auto& s : slots_) {
            if (s.done) cudaEventSynchronize(s.done), cudaEventDestroy(s.done);
            if (s.memory) cudaFreeHost(s.memory);
        }
    }
    unsigned char* acquire(std::size_t bytes) {
        slot& s = slots_[next_];
        if (s.done) FOCAL_CUDA_CHECK(cudaEventSynchronize(s.done));
        if (s.capacity < bytes) {  // with room to spare: pinned allocation synchronizes the device
            if (s.memory) FOCAL_CUDA_CHECK(cudaFreeHost(s.memory));
            s.capacity = bytes + bytes / 4;
            FOCAL_CUDA_CHECK(cudaMallocHost(&s.memory, s.capacity));
        }
        return static_cast<unsigned char*>(s.memory);
    }
    // The copies out of the slot acquire() returned are queued on `stream`.
    void release(cudaStream_t stream) {
        slot& s = slots_[next_];
        if (!s.done) FOCAL_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
        FOCAL_CUDA_CHECK(cudaEventRecord(s.done, stream));
        next_ = 1 - next_;
    }

private:
    struct slot {
        void* memory = nullptr;
        std::size_t capacity = 0;
        cudaEvent_t done{};
    };
    slot slots_[2];
    int next_ = 0;
};

class cuda_engine final : public train::training_engine {
public:
    cuda_engine(model::retinanet_model<float>& host, const train::train_options& o, const cuda_options& c)
        : options_(o), loss_(train::make_detection_loss(o)), executor_(c.device, c.tf32, c.cudnn), net_(executor_, host), sgd_(net_.ctx()) {
        FOCAL_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
        FOCAL_CUDA_CHECK(cudaMallocHost(&results_host_, sizeof(double) * 3));
        results_ = executor_.allocate<double>(3);
        ema_ = executor_.allocate<double>(1);
        if (train::reduces_gradients(o.parallel)) join_ranks();
    }
    ~cuda_engine() override {
        cudaStreamSynchronize(executor_.stream());  // the last results copy lands in results_host_
        cudaStreamSynchronize(copy_stream_);
        cudaStreamDestroy(copy_stream_);
        if (reduction_) {
            cudaStreamSynchronize(reduce_stream_);
            cudaEventDestroy(bucket_ready_);
            cudaEventDestroy(reduced_);
            cudaStreamDestroy(reduce_stream_);
        }
        cudaFreeHost(results_host_);
    }

    void begin(const std::vector<std::vector<float>>& velocity, double loss_normalizer) override {
        net_.parameters().upload_values();
        net_.parameters().upload_flags();
        net_.parameters().upload_velocity(velocity);
        const double ema = loss_normalizer / train::normalizer_share(options_.parallel);
        executor_.upload(ema_.get(), &ema, sizeof(double));
    }

    // Data thread: the batch into pinned memory, then onto the GPU on the copy stream.
    void prepare(train::batch& b) override {
        FOCAL_CUDA_CHECK(cudaSetDevice(executor_.device()));
        auto s = std::make_shared<staged_batch>();
        s->n = b.images.n, s->h = b.images.h, s->w = b.images.w;
        for (const auto& l : b.labels) s->max_boxes = std::max(s->max_boxes, static_cast<int>(l.size()));
        // Sections of the pinned slot, each 256-byte aligned: images, boxes, labels, counts.
        const auto aligned = [](std::size_t bytes) { return (bytes + 255) / 256 * 256; };
        const std::size_t image_bytes = b.images.data.size() * sizeof(float), boxes = static_cast<std::size_t>(s->n) * s->max_boxes;
        const std::size_t box_bytes = boxes * 4 * sizeof(float), label_bytes = boxes * sizeof(std::int64_t),
                          count_bytes = static_cast<std::size_t>(s->n) * sizeof(std::int32_t);
        const std::size_t box_at = aligned(image_bytes), label_at = box_at + aligned(box_bytes), count_at = label_at + aligned(label_bytes);
        unsigned char* pinned = ring_.acquire(count_at + count_bytes);
        std::memcpy(pinned, b.images.data.data(), image_bytes);
        auto* box_out = reinterpret_cast<float*>(pinned + box_at);
        auto* label_out = reinterpret_cast<std::int64_t*>(pinned + label_at);
        auto* count_out = reinterpret_cast<std::int32_t*>(pinned + count_at);
        std::fill_n(box_out, boxes * 4, 0.0f);
        std::fill_n(label_out, boxes, std::int64_t{0});
        for (int i = 0; i < s->n; ++i) {
            const auto& l = b.labels[static_cast<std::size_t>(i)];
            std::copy(l.begin(), l.end(), label_out + static_cast<std::size_t>(i) * s->max_boxes);
            std::copy(b.boxes[static_cast<std::size_t>(i)].begin(), b.boxes[static_cast<std::size_t>(i)].end(),
                      box_out + static_cast<std::size_t>(i) * s->max_boxes * 4);
            count_out[i] = static_cast<std::int32_t>(l.size());
        }
        // Allocated on the copy stream (so the copy does not wait for the step in progress), freed on
        // the compute stream after the step that reads it.
        s->images = executor_.allocate_on<float>(b.images.data.size(), copy_stream_);
        s->boxes = executor_.allocate_on<float>(boxes * 4, copy_stream_);
        s->labels = executor_.allocate_on<std::int64_t>(boxes, copy_stream_);
        s->counts = executor_.allocate_on<std::int32_t>(static_cast<std::size_t>(s->n), copy_stream_);
        try {
            FOCAL_CUDA_CHECK(cudaMemcpyAsync(s->images.get(), pinned, image_bytes, cudaMemcpyHostToDevice, copy_stream_));
            FOCAL_CUDA_CHECK(cudaMemcpyAsync(s->boxes.get(), box_out, box_bytes, cudaMemcpyHostToDevice, copy_stream_));
            FOCAL_CUDA_CHECK(cudaMemcpyAsync(s->labels.get(), label_out, label_bytes, cudaMemcpyHostToDevice, copy_stream_));
            FOCAL_CUDA_CHECK(cudaMemcpyAsync(s->counts.get(), count_out, count_bytes, cudaMemcpyHostToDevice, copy_stream_));
            FOCAL_CUDA_CHECK(cudaEventCreateWithFlags(&s->copied, cudaEventDisableTiming));
            FOCAL_CUDA_CHECK(cudaEventRecord(s->copied, copy_stream_));
        } catch (...) {
            cudaStreamSynchronize(copy_stream_);  // nothing in flight into the buffers freed now
            throw;
        }
        ring_.release(copy_stream_);
        b.staged = std::move(s);
    }

    void gradients(const train::batch& b) override {
        try {
            compute_gradients(b);
        } catch (...) {
            net_.clear();  // no half-pushed forward state into the next step
            throw;
        }
    }

    void compute_gradients(const train::batch& b) {
        constexpr const char* where = "retinanet::cuda::cuda_engine::gradients";
        require(b.staged != nullptr, where, "batch", "staged by prepare()", "not staged");
        const auto s = std::static_pointer_cast<staged_batch>(b.staged);
        const cudaStream_t stream = executor_.stream();
        FOCAL_CUDA_CHECK(cudaStreamWaitEvent(stream, s->copied, 0));
        s->consumed = true;
        // The images tensor shares the staged batch's ownership: the stem convolution keeps it for backward.
        const device_tensor images{3, s->n, s->h, s->w, std::shared_ptr<float>(s, s->images.get())};
        net_.set_grad_enabled(true);
        net_.zero_grad();
        if (release_) release_->reset();
        const auto out = net_.forward(images);
        const focal::index_t n = out.batch, a = out.anchors, k = out.classes, g = s->max_boxes;
        const float* anchors = anchors_.get(executor_, net_.host(), {s->h, s->w}, out.grids);

        const auto labels = executor_.allocate<std::int64_t>(static_cast<std::size_t>(n * a));
        const auto targets = executor_.allocate<float>(static_cast<std::size_t>(n * a * 4));
        const auto positives = executor_.allocate<std::int64_t>(static_cast<std::size_t>(n));
        const auto normalizer = executor_.allocate<double>(static_cast<std::size_t>(n));
        const auto d_cls = executor_.allocate<float>(static_cast<std::size_t>(n * a * k));
        const auto d_box = executor_.allocate<float>(static_cast<std::size_t>(n * a * 4));
        const std::size_t ws_bytes = std::max({focal::cuda::assign_targets_batched_workspace_size(n, a, g),
                                               focal::cuda::classification_loss_workspace_size(n, a, k),
                                               focal::cuda::box_regression_loss_workspace_size(n, a)});
        const auto ws = workspace_of(executor_, ws_memory_, ws_capacity_, ws_bytes);

        // Targets (torchvision's matcher and coder), the normalizer, then both losses with their gradients.
        focal::cuda::assign_targets_batched(loss_.matcher, loss_.coder, matrix<const float>(anchors, a, 4),
                                            view3<const float>(s->boxes.get(), n, g, 4), vector<const std::int32_t>(s->counts.get(), n),
                                            view3<const float>{}, vector<const std::int32_t>{},
                                            matrix<const std::int64_t>(s->labels.get(), n, g), matrix<std::int64_t>(labels.get(), n, a),
                                            view3<float>(targets.get(), n, a, 4), vector<std::int64_t>(positives.get(), n), ws, stream);
        // Several ranks: the normalizer of the ranks' summed counts (train::data_parallel_options).
        if (counts_) {
            executor_.for_each(1, batch_counts_op{positives.get(), static_cast<int>(n), counts_.get()});
            reduction_->sum(counts_.get(), 2, stream);
        }
        executor_.for_each(1, loss_normalizer_op{positives.get(), static_cast<int>(n), loss_.normalizer, static_cast<double>(loss_.ema_momentum),
                                                ema_.get(), normalizer.get(), counts_.get(),
                                                counts_ ? static_cast<double>(reduction_->ranks()) : 1.0});
        const focal::cuda::device_normalizer<double> per_image{normalizer.get(), 1.0, 0.0};
        focal::cuda::classification_loss(loss_.classification, view3<const float>(out.cls_logits.get(), n, a, k),
                                          matrix<const std::int64_t>(labels.get(), n, a), per_image,
                                          focal::cuda::batch_loss_output<float>{nullptr, results_.get(), view3<float>(d_cls.get(), n, a, k)}, ws,
                                          stream);
        focal::cuda::box_regression_loss(loss_.box, view3<const float>(out.bbox_regression.get(), n, a, 4),
                                         view3<const float>(targets.get(), n, a, 4), matrix<const std::int64_t>(labels.get(), n, a), per_image,
                                         focal::cuda::batch_loss_output<float>{nullptr, results_.get() + 1, view3<float>(d_box.get(), n, a, 4)},
                                         ws, stream);
        net_.backward(d_cls.get(), d_box.get());
        // Several ranks: the buckets backward did not release, then the step waits for every
        // allreduce before the update; the losses are averaged too.
        if (reduction_) {
            for (const std::size_t bucket : release_->ready_all()) reduce_bucket(bucket);
            FOCAL_CUDA_CHECK(cudaEventRecord(reduced_, reduce_stream_));
            FOCAL_CUDA_CHECK(cudaStreamWaitEvent(stream, reduced_, 0));
            reduction_->average(results_.get(), 2, stream);
        }
        positives_ = positives;
        batch_ = static_cast<int>(n);
    }

    train::step_result update(double lr) override {
        sgd_.step(options_.optimizer, lr);
        executor_.copy(results_.get() + 2, sgd_.norm(), sizeof(double));
        FOCAL_CUDA_CHECK(cudaMemcpyAsync(results_host_, results_.get(), 3 * sizeof(double), cudaMemcpyDeviceToHost, executor_.stream()));
        std::vector<std::int64_t> positives(static_cast<std::size_t>(batch_));
        executor_.download(positives.data(), positives_.get(), positives.size() * sizeof(std::int64_t));  // synchronizes
        train::step_result r;
        r.loss.classification = results_host_[0];
        r.loss.box = results_host_[1];
        for (auto p : positives) r.loss.positives += p;
        r.grad_norm = results_host_[2];
        return r;
    }

    double to_host(std::vector<std::vector<float>>& velocity) override {
        net_.parameters().download_values();
        net_.parameters().download_velocity(velocity);
        double ema = 0;
        executor_.download(&ema, ema_.get(), sizeof(double));
        return ema * train::normalizer_share(options_.parallel);
    }

    focal::coco_eval_result evaluate(const data::dataset& data, std::size_t images) override {
        const train::inference_options options;
        const train::batch_detector detector = [&](const train::batch& b) { return detect_batch(executor_, net_, anchors_, b, options); };
        return train::evaluate(detector, net_.host().config(), data, images, options, options_.parallel.group);
    }

private:
    // Several ranks: NCCL, and the gradients in buckets (distributed/bucket_plan.hpp, as the CPU
    // engine's). Gradient g is the store's slot S - 1 - g (backward finishes the slots in reverse);
    // a bucket's slots are consecutive, so it is one range of the flat gradient buffer. With
    // overlap, the layers' signals release the buckets during backward and each allreduce runs on
    // its own stream once the compute stream has reached that point.
    void join_ranks() {
        const auto& parallel = options_.parallel;
        reduction_.emplace(*parallel.group);
        if (parallel.global_positives) counts_ = executor_.allocate<std::int64_t>(2);
        auto& store = net_.parameters();
        const int slots = static_cast<int>(store.slot_count());
        std::vector<std::size_t> sizes;
        for (int g = 0; g < slots; ++g) sizes.push_back(static_cast<std::size_t>(store.slot_size(slots - 1 - g)));
        plan_ = distributed::plan_buckets(sizes, std::max<std::size_t>(1, parallel.bucket_bytes / sizeof(float)));
        for (const auto& members : plan_.members) {
            const int low = slots - 1 - static_cast<int>(members.back()), high = slots - 1 - static_cast<int>(members.front());
            bucket_range_.push_back({store.offset(low), store.offset(high) + store.slot_size(high)});
        }
        release_.emplace(plan_);
        FOCAL_CUDA_CHECK(cudaStreamCreateWithFlags(&reduce_stream_, cudaStreamNonBlocking));
        FOCAL_CUDA_CHECK(cudaEventCreateWithFlags(&bucket_ready_, cudaEventDisableTiming));
        FOCAL_CUDA_CHECK(cudaEventCreateWithFlags(&reduced_, cudaEventDisableTiming));
        if (!parallel.overlap) return;
        net_.ctx().on_gradients_ready = [this, slots](std::size_t first, std::size_t count) {
            for (std::size_t slot = first; slot < first + count; ++slot)
                for (const std::size_t bucket : release_->ready(static_cast<std::size_t>(slots) - 1 - slot)) reduce_bucket(bucket);
        };
    }
    // The bucket's allreduce on the reduction stream, after the compute stream's work so far.
    void reduce_bucket(std::size_t bucket) {
        FOCAL_CUDA_CHECK(cudaEventRecord(bucket_ready_, executor_.stream()));
        FOCAL_CUDA_CHECK(cudaStreamWaitEvent(reduce_stream_, bucket_ready_, 0));
        const auto [begin, end] = bucket_range_[bucket];
        reduction_->average(net_.parameters().grads() + begin, static_cast<std::size_t>(end - begin), reduce_stream_);
    }


    const train::train_options& options_;
    train::detection_loss loss_;
    cuda_executor executor_;
    gpu_network net_;
    device_sgd<cuda_executor> sgd_;
    cudaStream_t copy_stream_{};
    pinned_ring ring_;
    device_anchor_cache anchors_;
    std::shared_ptr<unsigned char> ws_memory_;
    std::size_t ws_capacity_ = 0;
    std::shared_ptr<double> results_, ema_;  // device: classification, box, gradient norm; the running normalizer
    double* results_host_ = nullptr;          // pinned
    std::shared_ptr<std::int64_t> positives_;
    int batch_ = 0;
    // Several ranks (join_ranks):
    std::optional<nccl_reduction> reduction_;
    std::shared_ptr<std::int64_t> counts_;  // device: the ranks' summed {positives, images}
    distributed::bucket_plan plan_;
    std::optional<distributed::bucket_release> release_;
    std::vector<std::pair<index, index>> bucket_range_;  // per bucket: [begin, end) of the gradient buffer
    cudaStream_t reduce_stream_{};
    cudaEvent_t bucket_ready_{}, reduced_{};
};

}  // namespace

bool cuda_available(std::string* why) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count == 0) {
        if (why)
            *why = status != cudaSuccess
                       ? std::string("the CUDA runtime reports ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")"
                       : "no CUDA device is present";
        return false;
    }
    return true;
}

int cuda_device_count() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

std::string cuda_device_description(int device) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return "CUDA device " + std::to_string(device);
    return std::string(p.name) + " (device " + std::to_string(device) + ", " + std::to_string(p.totalGlobalMem >> 30) + " GiB)";
}

bool cudnn_built() {
#if RETINANET_HAS_CUDNN
    return true;
#else
    return false;
#endif
}

std::unique_ptr<train::training_engine> make_cuda_engine(model::retinanet_model<float>& net, const train::train_options& options,
                                                         const cuda_options& cuda) {
    require_device("retinanet::cuda::make_cuda_engine");
    return std::make_unique<cuda_engine>(net, options, cuda);
}

train::batch_detector make_cuda_detector(model::retinanet_model<float>& net, const train::inference_options& options, const cuda_options& cuda) {
    require_device("retinanet::cuda::make_cuda_detector");
    struct state {
        cuda_executor executor;
        gpu_network net;
        device_anchor_cache anchors;
        train::inference_options options;
        state(model::retinanet_model<float>& host, const train::inference_options& o, const cuda_options& c)
            : executor(c.device, c.tf32, c.cudnn), net(executor, host), options(o) {}
    };
    auto s = std::make_shared<state>(net, options, cuda);
    return [s](const train::batch& b) { return detect_batch(s->executor, s->net, s->anchors, b, s->options); };
}

}  // namespace retinanet::cuda
