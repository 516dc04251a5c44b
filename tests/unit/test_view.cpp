// focal::view: extents, strides, indexing, conversions and the memory-space rule.
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>
#include <focal/core.hpp>

using focal::index_t;

static_assert(std::is_convertible_v<focal::matrix_view<float>, focal::matrix_view<const float>>);
static_assert(!std::is_convertible_v<focal::matrix_view<const float>, focal::matrix_view<float>>);
static_assert(!std::is_convertible_v<focal::matrix_view<float, focal::device_space>, focal::matrix_view<float>>);
static_assert(!std::is_convertible_v<focal::matrix_view<float>, focal::matrix_view<float, focal::device_space>>);
static_assert(!std::is_convertible_v<focal::matrix_view<float>, focal::matrix_view<double>>);
static_assert(std::is_trivially_copyable_v<focal::matrix_view<float>>);  // passes to a CUDA kernel by value

TEST_CASE("row-major views: extents, strides, indexing, size") {
    std::vector<int> data(24);
    for (int i = 0; i < 24; ++i) data[i] = i;
    const auto v = focal::make_view(data.data(), 4, 6);
    CHECK(v.rank() == 2);
    CHECK(v.extent(0) == 4);
    CHECK(v.extent(1) == 6);
    CHECK(v.stride(0) == 6);
    CHECK(v.stride(1) == 1);
    CHECK(v.size() == 24);
    CHECK(v(2, 3) == 15);
    CHECK(v.rows_contiguous());
    const auto t = v.transposed();
    CHECK(t.extent(0) == 6);
    CHECK(t(3, 2) == 15);
    CHECK(!t.rows_contiguous());
    const focal::view<int, 3> cube(data.data(), 2, 3, 4);
    CHECK(cube.stride(0) == 12);
    CHECK(cube(1, 2, 3) == 23);
}

TEST_CASE("strided views and writes through them") {
    std::vector<double> data(20, 0.0);
    const focal::matrix_view<double> every_other(data.data(), {2, 5}, {10, 2});
    every_other(1, 4) = 7.0;
    CHECK(data[18] == 7.0);
    const focal::matrix_view<const double> read_only = every_other;
    CHECK(read_only(1, 4) == 7.0);
}

TEST_CASE("default views are null; spans make views; shape strings for messages") {
    const focal::matrix_view<float> none;
    CHECK(none.is_null());
    CHECK(none.empty());
    std::vector<float> data(6);
    const auto v = focal::make_view(std::span<float>(data));
    CHECK(v.extent(0) == 6);
    CHECK(!v.is_null());
    CHECK(focal::detail::shape_string(focal::make_view(data.data(), 2, 3)) == "[2 x 3]");
    try {
        focal::make_view(std::span<float>(data), 4, 2);
        FAIL("expected focal::error");
    } catch (const focal::error& e) {
        const std::string m = e.what();
        CHECK(m.find("span size") != std::string::npos);
        CHECK(m.find("4 * 2") != std::string::npos);
        CHECK(m.find("got 6") != std::string::npos);
    }
    const auto d = focal::make_device_view(static_cast<float*>(nullptr), 3, 4);
    static_assert(std::is_same_v<decltype(d)::memory_space, focal::device_space>);
    CHECK(d.extent(1) == 4);
}
