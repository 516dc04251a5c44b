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

// ---- slice(v, i) and leading_range(v, begin, end) ----

TEST_CASE("slice and leading_range on row-major views: extents, strides, element addresses") {
    std::vector<int> data(2 * 3 * 4);
    for (int i = 0; i < 24; ++i) data[i] = i;
    const focal::tensor3_view<int> cube(data.data(), 2, 3, 4);
    static_assert(std::is_same_v<focal::tensor3_view<int>, focal::view<int, 3>>);
    static_assert(std::is_same_v<decltype(focal::slice(cube, 1)), focal::matrix_view<int>>);
    const focal::matrix_view<int> m = focal::slice(cube, 1);
    CHECK(m.extent(0) == 3);
    CHECK(m.extent(1) == 4);
    CHECK(m.stride(0) == 4);
    CHECK(m.stride(1) == 1);
    CHECK(m.data_handle() == data.data() + 12);
    CHECK(&m(2, 3) == &cube(1, 2, 3));
    const focal::vector_view<int> row = focal::slice(m, 2);
    CHECK(row.extent(0) == 4);
    CHECK(row.stride(0) == 1);
    CHECK(&row(1) == &cube(1, 2, 1));
    // const-ness and the memory space are kept
    const focal::tensor3_view<const int> read_only = cube;
    static_assert(std::is_same_v<decltype(focal::slice(read_only, 0)), focal::matrix_view<const int>>);
    const focal::tensor3_view<float, focal::device_space> device(static_cast<float*>(nullptr), 2, 3, 4);
    static_assert(std::is_same_v<decltype(focal::slice(device, 0)), focal::matrix_view<float, focal::device_space>>);
    static_assert(std::is_same_v<decltype(focal::leading_range(device, 0, 1)), focal::tensor3_view<float, focal::device_space>>);

    const focal::tensor3_view<int> tail = focal::leading_range(cube, 1, 2);
    CHECK(tail.extent(0) == 1);
    CHECK(tail.extent(1) == 3);
    CHECK(tail.extent(2) == 4);
    CHECK(tail.stride(0) == 12);
    CHECK(tail.stride(1) == 4);
    CHECK(tail.stride(2) == 1);
    CHECK(&tail(0, 1, 2) == &cube(1, 1, 2));
    const focal::matrix_view<int> rows = focal::leading_range(m, 1, 3);
    CHECK(rows.extent(0) == 2);
    CHECK(rows.extent(1) == 4);
    CHECK(&rows(0, 0) == &cube(1, 1, 0));
    CHECK(&rows(1, 3) == &cube(1, 2, 3));
    const focal::vector_view<int> middle = focal::leading_range(row, 1, 3);  // rank 1: a sub-vector
    CHECK(middle.extent(0) == 2);
    CHECK(middle(0) == 21);
    CHECK(middle(1) == 22);
    // The whole range is the view itself.
    const auto all = focal::leading_range(cube, 0, 2);
    CHECK(all.data_handle() == cube.data_handle());
    CHECK(all.extent(0) == 2);
    CHECK(all.stride(0) == 12);
    // Writes go through to the caller's memory.
    focal::slice(focal::slice(cube, 0), 1)(2) = -1;
    CHECK(data[6] == -1);
}

TEST_CASE("slice and leading_range on strided views: any strides, negative ones included") {
    std::vector<double> data(200);
    for (int i = 0; i < 200; ++i) data[i] = i;
    // A 3 x 4 x 5 view with strides {60, 1, 4} (each image column-major, padded: 60 >= 4 * 5).
    const focal::tensor3_view<double> v(data.data(), {3, 4, 5}, {60, 1, 4});
    for (index_t b = 0; b < 3; ++b) {
        const focal::matrix_view<double> s = focal::slice(v, b);
        CHECK(s.extent(0) == 4);
        CHECK(s.extent(1) == 5);
        CHECK(s.stride(0) == 1);
        CHECK(s.stride(1) == 4);
        for (index_t r = 0; r < 4; ++r)
            for (index_t c = 0; c < 5; ++c) CHECK(&s(r, c) == &v(b, r, c));
        const focal::vector_view<double> col = focal::slice(s.transposed(), 3);  // column 3 of image b
        CHECK(col.extent(0) == 4);
        CHECK(col.stride(0) == 1);
        CHECK(&col(2) == &v(b, 2, 3));
    }
    const focal::tensor3_view<double> last_two = focal::leading_range(v, 1, 3);
    CHECK(last_two.extent(0) == 2);
    CHECK(last_two.stride(0) == 60);
    CHECK(last_two.stride(1) == 1);
    CHECK(last_two.stride(2) == 4);
    CHECK(&last_two(1, 3, 4) == &v(2, 3, 4));
    // A reversed view (negative leading stride): slices and ranges follow it.
    const focal::matrix_view<double> reversed(data.data() + 9 * 10, {10, 10}, {-10, 1});  // row i is data row 9 - i
    CHECK(focal::slice(reversed, 0).data_handle() == data.data() + 90);
    CHECK(focal::slice(reversed, 9)(4) == 4.0);
    const auto mid = focal::leading_range(reversed, 2, 5);
    CHECK(mid.extent(0) == 3);
    CHECK(mid.stride(0) == -10);
    CHECK(&mid(0, 0) == data.data() + 70);
    CHECK(&mid(2, 9) == data.data() + 59);
    // A broadcast view (stride 0 on the leading extent): every slice is the same memory.
    const focal::tensor3_view<double> broadcast(data.data(), {4, 2, 3}, {0, 3, 1});
    CHECK(focal::slice(broadcast, 3).data_handle() == data.data());
    CHECK(focal::leading_range(broadcast, 2, 4).data_handle() == data.data());
}

TEST_CASE("slice and leading_range of empty views: no element is formed") {
    // Empty inner extents: the slice keeps the base pointer (even a null one) and its extents.
    const focal::tensor3_view<float> no_rows(static_cast<float*>(nullptr), 5, 0, 4);
    const focal::matrix_view<float> s = focal::slice(no_rows, 3);
    CHECK(s.data_handle() == nullptr);
    CHECK(s.extent(0) == 0);
    CHECK(s.extent(1) == 4);
    CHECK(s.empty());
    CHECK(s.is_null());
    std::vector<float> data(8);
    const focal::tensor3_view<float> no_cols(data.data(), {2, 3, 0}, {100, 7, 1});  // strides that would leave the buffer
    const focal::matrix_view<float> sc = focal::slice(no_cols, 1);
    CHECK(sc.data_handle() == data.data());
    CHECK(sc.extent(0) == 3);
    CHECK(sc.extent(1) == 0);
    CHECK(sc.stride(0) == 7);
    CHECK(focal::leading_range(no_cols, 1, 2).data_handle() == data.data());
    // An empty range, anywhere (at the end included), is empty at the base pointer.
    const focal::matrix_view<float> m(data.data(), 2, 4);
    for (index_t at : {0, 1, 2}) {
        CAPTURE(at);
        const auto none = focal::leading_range(m, at, at);
        CHECK(none.extent(0) == 0);
        CHECK(none.extent(1) == 4);
        CHECK(none.empty());
        CHECK(none.data_handle() == data.data());
    }
    // A range of the null view is null; an empty view's leading range too.
    const focal::matrix_view<float> null_view;
    CHECK(focal::leading_range(null_view, 0, 0).is_null());
    const focal::vector_view<float> empty_vector(data.data(), 0);
    CHECK(focal::leading_range(empty_vector, 0, 0).empty());
    // Rank 2 -> 1 with no columns.
    const focal::matrix_view<float> zero_cols(data.data(), 3, 0);
    const focal::vector_view<float> r = focal::slice(zero_cols, 2);
    CHECK(r.extent(0) == 0);
    CHECK(r.data_handle() == data.data());
}

TEST_CASE("slice and leading_range are constexpr") {
    static constexpr int cells[6] = {0, 1, 2, 3, 4, 5};
    constexpr focal::matrix_view<const int> m(cells, 3, 2);
    static_assert(focal::slice(m, 2)(1) == 5);
    static_assert(focal::leading_range(m, 1, 3)(0, 0) == 2);
    static_assert(focal::leading_range(m, 1, 3).extent(0) == 2);
    CHECK(focal::slice(m, 1)(0) == 2);
}
