// nvcc compile check: focal's loss policies and views in device code, for float and double.
//
// Built into the object library focal_cuda_compile_check (sm_80, sm_90) against focal::focal only:
// no Eigen, xtensor or xsimd may be needed. Nothing here runs; the kernels only have to compile
// (device and host passes) with every FOCAL_HD function instantiated in device code.
#include <focal/core/view.hpp>
#include <focal/loss/binary_cross_entropy.hpp>
#include <focal/loss/giou.hpp>
#include <focal/loss/sigmoid_focal.hpp>
#include <focal/loss/smooth_l1.hpp>

#if defined(FOCAL_USE_XSIMD)
#error "focal_cuda_compile_check must not see FOCAL_USE_XSIMD (link focal::focal, not focal::xsimd)"
#endif
#if FOCAL_HAS_XSIMD
#error "FOCAL_HAS_XSIMD must be 0 under nvcc"
#endif
#if defined(XSIMD_VERSION_MAJOR) || defined(EIGEN_WORLD_VERSION) || defined(XTENSOR_VERSION_MAJOR)
#error "focal's policy headers must not pull in xsimd, Eigen or xtensor"
#endif
#if !defined(__CUDACC__)
#error "this file is compiled by nvcc"
#endif

namespace {

using focal::device_space;
using focal::index_t;
template <class T>
using device_matrix = focal::matrix_view<T, device_space>;

static_assert(focal::elementwise_loss<focal::sigmoid_focal_loss, float>);
static_assert(focal::elementwise_loss<focal::binary_cross_entropy, double>);
static_assert(focal::elementwise_loss<focal::smooth_l1_loss, float>);
static_assert(focal::elementwise_loss<focal::l1_loss, double>);
static_assert(focal::box_loss<focal::giou_loss, float>);
static_assert(focal::box_loss<focal::smooth_l1_loss, double>);
static_assert(focal::box_loss<focal::l1_loss, float>);

__device__ index_t global_index() {
    return static_cast<index_t>(blockIdx.x) * static_cast<index_t>(blockDim.x) + static_cast<index_t>(threadIdx.x);
}

template <class T>
__device__ focal::box4<T> load_box(const device_matrix<const T>& v, index_t row) {
    return focal::box4<T>{{v(row, 0), v(row, 1), v(row, 2), v(row, 3)}};
}

template <class T>
__device__ void store(const device_matrix<T>& out, index_t row, int& col, const focal::value_grad<T>& vg) {
    out(row, col++) = vg.value;
    out(row, col++) = vg.grad;
}

template <class T>
__device__ void store(const device_matrix<T>& out, index_t row, int& col, const focal::box_value_grad<T>& vg) {
    out(row, col++) = vg.value;
    for (int c = 0; c < 4; ++c) out(row, col++) = vg.grad[c];
}

// Elementwise policies. inputs: N x 2 (logit or prediction, target); out: N x classification_columns.
inline constexpr int classification_columns = 20;

template <class T>
__global__ void elementwise_policies_kernel(device_matrix<const T> inputs, device_matrix<T> out,
                                            focal::sigmoid_focal_loss focal_loss, focal::binary_cross_entropy bce,
                                            focal::smooth_l1_loss smooth_l1) {
    const index_t i = global_index();
    if (i >= inputs.extent(0)) return;
    // Read through the transposed view too: the same element, swapped indices.
    const device_matrix<const T> columns = inputs.transposed();
    const T x = inputs(i, 0), t = columns(1, i);
    const focal::l1_loss l1{};
    int col = 0;

    store(out, i, col, focal_loss.value_and_grad(x, t));
    out(i, col++) = focal_loss.value(x, t);
    out(i, col++) = focal_loss.grad(x, t);

    store(out, i, col, bce.value_and_grad(x, t));
    out(i, col++) = bce.value(x, t);
    out(i, col++) = bce.grad(x, t);

    store(out, i, col, smooth_l1.value_and_grad(x, t));
    out(i, col++) = smooth_l1.value(x, t);
    out(i, col++) = smooth_l1.grad(x, t);

    store(out, i, col, l1.value_and_grad(x, t));
    out(i, col++) = l1.value(x, t);
    out(i, col++) = l1.grad(x, t);

    const focal::logistic_parts<T> s = focal::logistic(x);
    out(i, col++) = s.p;
    out(i, col++) = s.one_minus_p;
    out(i, col++) = s.neg_log_p;
    out(i, col++) = s.neg_log_1mp;
}

// Box policies. pred, target: N x 4; out: N x box_columns.
inline constexpr int box_columns = 18;

template <class T>
__global__ void box_policies_kernel(device_matrix<const T> pred, device_matrix<const T> target, device_matrix<T> out,
                                    focal::giou_loss giou, focal::smooth_l1_loss smooth_l1) {
    const index_t i = global_index();
    if (i >= pred.extent(0)) return;
    const focal::box4<T> b = load_box(pred, i), g = load_box(target, i);
    const focal::l1_loss l1{};
    int col = 0;

    store(out, i, col, giou.value_and_grad(b, g));
    out(i, col++) = giou.value(b, g);

    store(out, i, col, smooth_l1.value_and_grad(b, g));
    out(i, col++) = smooth_l1.value(b, g);

    store(out, i, col, l1.value_and_grad(b, g));
    out(i, col++) = l1.value(b, g);
}

// Views made, converted and queried in device code.
template <class T>
__global__ void view_kernel(T* data, index_t rows, index_t cols, device_matrix<T> out) {
    const device_matrix<T> v(data, rows, cols);
    const device_matrix<const T> cv = v;  // T -> const T in device code
    const focal::vector_view<T, device_space> flat(data, rows * cols);
    const index_t extents[2] = {cols, rows}, strides[2] = {1, cols};
    const device_matrix<const T> strided(data, extents, strides);
    const device_matrix<T> empty;
    const index_t i = global_index();
    if (i >= rows || out.extent(0) < rows || out.extent(1) < 4) return;
    out(i, 0) = cv(i, 0) + flat(i * cols);
    out(i, 1) = static_cast<T>(cv.size() + cv.stride(0) + cv.extent(1));
    out(i, 2) = static_cast<T>(cv.rows_contiguous() + strided.rows_contiguous() + empty.is_null() + empty.empty());
    out(i, 3) = strided(0, i) + static_cast<T>(v.data_handle() == cv.data_handle());
}

unsigned blocks_for(index_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

// Host launchers: views are made on the host with make_device_view and passed to the kernels by value.
template <class T>
void focal_launch_policy_kernels(const T* inputs, const T* boxes, const T* target_boxes, T* out, T* box_out,
                                 index_t n) {
    const auto in = focal::make_device_view(inputs, n, 2);
    const device_matrix<T> o = focal::make_device_view(out, n, classification_columns);
    elementwise_policies_kernel<T><<<blocks_for(n), 256>>>(in, o, focal::sigmoid_focal_loss{0.25f, 2.0f},
                                                           focal::binary_cross_entropy{}, focal::smooth_l1_loss{});

    const device_matrix<const T> pred = focal::make_device_view(boxes, n, 4);
    const device_matrix<const T> target = focal::make_device_view(target_boxes, n, 4);
    box_policies_kernel<T><<<blocks_for(n), 256>>>(pred, target, focal::make_device_view(box_out, n, box_columns),
                                                   focal::giou_loss{}, focal::smooth_l1_loss{0.0f});
}

template <class T>
void focal_launch_view_kernel(T* data, index_t rows, index_t cols, T* out) {
    view_kernel<T><<<blocks_for(rows), 256>>>(data, rows, cols, focal::make_device_view(out, rows, 4));
}

template void focal_launch_policy_kernels<float>(const float*, const float*, const float*, float*, float*, index_t);
template void focal_launch_policy_kernels<double>(const double*, const double*, const double*, double*, double*,
                                                  index_t);
template void focal_launch_view_kernel<float>(float*, index_t, index_t, float*);
template void focal_launch_view_kernel<double>(double*, index_t, index_t, double*);
