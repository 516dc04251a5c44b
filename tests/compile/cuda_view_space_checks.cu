// Compile-time checks that memory spaces do not mix across the host / CUDA boundary: a CUDA entry
// point refuses host views, and a host algorithm refuses device views, with no conversion that
// would let either through. Part of focal_cuda_compile_check (nvcc); nothing here runs.
#include <cstdint>
#include <span>

#include <focal/coder/box_coding.hpp>
#include <focal/cuda.cuh>
#include <focal/nms.hpp>
#include <focal/retinanet/postprocess.hpp>

namespace {

using focal::device_space;
template <class T>
using host_matrix = focal::matrix_view<T>;
template <class T>
using host_vector = focal::vector_view<T>;
template <class T>
using device_matrix = focal::matrix_view<T, device_space>;
template <class T>
using device_vector = focal::vector_view<T, device_space>;
template <class T>
using host_tensor3 = focal::tensor3_view<T>;
template <class T>
using device_tensor3 = focal::tensor3_view<T, device_space>;

// The same call with host or device views: only the matching space compiles.
template <class Boxes, class Scores, class Keep, class Count>
concept cuda_nms_accepts = requires(Boxes b, Scores s, Keep k, Count c, focal::cuda::workspace ws) {
    focal::cuda::nms(focal::greedy_nms{}, b, s, k, c, ws, cudaStream_t{});
};
template <class Boxes, class Scores, class Keep>
concept host_nms_accepts = requires(Boxes b, Scores s, Keep k) { focal::nms(focal::greedy_nms{}, b, s, k); };

static_assert(cuda_nms_accepts<device_matrix<const float>, device_vector<const float>, device_vector<std::int32_t>,
                               device_vector<std::int32_t>>);
static_assert(!cuda_nms_accepts<host_matrix<const float>, host_vector<const float>, host_vector<std::int32_t>,
                                host_vector<std::int32_t>>);
static_assert(!cuda_nms_accepts<device_matrix<const float>, host_vector<const float>, device_vector<std::int32_t>,
                                device_vector<std::int32_t>>);
static_assert(host_nms_accepts<host_matrix<const float>, host_vector<const float>, host_vector<std::int64_t>>);
static_assert(!host_nms_accepts<device_matrix<const float>, device_vector<const float>, device_vector<std::int64_t>>);

template <class Boxes, class Anchors, class Out>
concept cuda_encode_accepts = requires(Boxes b, Anchors a, Out o) {
    focal::cuda::encode_boxes(focal::delta_xywh_coder{}, b, a, o, cudaStream_t{});
};
template <class Boxes, class Anchors, class Out>
concept host_encode_accepts = requires(Boxes b, Anchors a, Out o) { focal::encode_boxes(focal::delta_xywh_coder{}, b, a, o); };

static_assert(cuda_encode_accepts<device_matrix<const float>, device_matrix<const float>, device_matrix<float>>);
static_assert(!cuda_encode_accepts<host_matrix<const float>, host_matrix<const float>, host_matrix<float>>);
static_assert(host_encode_accepts<host_matrix<const float>, host_matrix<const float>, host_matrix<float>>);
static_assert(!host_encode_accepts<device_matrix<const float>, device_matrix<const float>, device_matrix<float>>);
static_assert(!host_encode_accepts<host_matrix<const float>, device_matrix<const float>, host_matrix<float>>);

// Batch post-processing: the same batch_detections_output struct, its Space picking the entry point.
template <class Logits, class Anchors, class Out>
concept cuda_postprocess_accepts = requires(Logits l, Anchors a, Out out, focal::cuda::workspace ws) {
    focal::cuda::postprocess(focal::retinanet_postprocess{}, l, l, a, std::span<const focal::index_t>{},
                             std::span<const focal::image_size>{}, out, ws, cudaStream_t{});
};
template <class Logits, class Anchors, class Out>
concept host_postprocess_accepts = requires(Logits l, Anchors a, Out out) {
    focal::postprocess(focal::retinanet_postprocess{}, l, l, a, std::span<const focal::index_t>{},
                       std::span<const focal::image_size>{}, out);
};
using device_detections = focal::batch_detections_output<float, std::int64_t, std::int32_t, device_space>;
using host_detections = focal::batch_detections_output<float, std::int64_t, std::int32_t>;

static_assert(cuda_postprocess_accepts<device_tensor3<const float>, device_matrix<const float>, device_detections>);
static_assert(!cuda_postprocess_accepts<device_tensor3<const float>, device_matrix<const float>, host_detections>);
static_assert(!cuda_postprocess_accepts<host_tensor3<const float>, host_matrix<const float>, device_detections>);
static_assert(host_postprocess_accepts<host_tensor3<const float>, host_matrix<const float>, host_detections>);
static_assert(!host_postprocess_accepts<host_tensor3<const float>, host_matrix<const float>, device_detections>);
static_assert(!host_postprocess_accepts<device_tensor3<const float>, device_matrix<const float>, device_detections>);

}  // namespace

int focal_cuda_view_space_checks() { return 0; }
