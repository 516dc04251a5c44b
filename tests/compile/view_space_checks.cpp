// Compile-time checks of view conversions: const-correctness and memory spaces.
// Part of focal_header_check; nothing here runs.
#include <type_traits>

#include <focal/core/view.hpp>

namespace {

using focal::device_space;
using focal::host_space;
using focal::matrix_view;
using focal::vector_view;
using focal::view;

// A device view never becomes a host view, and the reverse neither, in either constness.
static_assert(!std::is_convertible_v<matrix_view<float, device_space>, matrix_view<float>>);
static_assert(!std::is_convertible_v<matrix_view<float, device_space>, matrix_view<const float>>);
static_assert(!std::is_convertible_v<matrix_view<float>, matrix_view<float, device_space>>);
static_assert(!std::is_convertible_v<matrix_view<float>, matrix_view<const float, device_space>>);
static_assert(!std::is_constructible_v<matrix_view<float>, matrix_view<float, device_space>>);
static_assert(!std::is_constructible_v<matrix_view<float, device_space>, matrix_view<float>>);
static_assert(!std::is_convertible_v<vector_view<int, device_space>, vector_view<int>>);

// view<T> -> view<const T>, never the reverse; same in device space.
static_assert(std::is_convertible_v<view<float, 1>, view<const float, 1>>);
static_assert(std::is_convertible_v<matrix_view<float>, matrix_view<const float>>);
static_assert(!std::is_convertible_v<view<const float, 1>, view<float, 1>>);
static_assert(!std::is_convertible_v<matrix_view<const float>, matrix_view<float>>);
static_assert(!std::is_constructible_v<matrix_view<float>, matrix_view<const float>>);
static_assert(std::is_convertible_v<matrix_view<float, device_space>, matrix_view<const float, device_space>>);
static_assert(!std::is_convertible_v<matrix_view<const float, device_space>, matrix_view<float, device_space>>);

// No conversion across element types or ranks.
static_assert(!std::is_convertible_v<matrix_view<float>, matrix_view<double>>);
static_assert(!std::is_convertible_v<matrix_view<const float>, matrix_view<const double>>);
static_assert(!std::is_convertible_v<view<float, 1>, view<float, 2>>);

// Views are passed by value to kernels and threads: they must stay trivially copyable.
static_assert(std::is_trivially_copyable_v<matrix_view<float, device_space>>);
static_assert(std::is_trivially_copyable_v<view<const double, 4>>);

// make_device_view tags its result with device_space.
static_assert(std::is_same_v<decltype(focal::make_device_view(static_cast<float*>(nullptr), 2, 3)),
                             matrix_view<float, device_space>>);
static_assert(std::is_same_v<decltype(focal::make_view(static_cast<float*>(nullptr), 2, 3)), matrix_view<float>>);

}  // namespace

int focal_view_space_checks() { return 0; }
