// focal/core/view.hpp: a non-owning, strided view over caller memory.
//
// view<T, Rank, Space> is a pointer, Rank extents and Rank strides (in elements, like
// std::mdspan's layout_stride) plus a memory-space tag. It is shaped like mdspan
// (extent(r), stride(r), data_handle(), operator()) so that std::mdspan can be accepted later.
// focal never copies through a view: algorithms read and write the caller's memory in place.
#pragma once

#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "error.hpp"
#include "memory_space.hpp"

namespace focal {

using index_t = std::ptrdiff_t;

template <class T, std::size_t Rank, class Space = host_space>
class view {
    static_assert(Rank >= 1 && Rank <= 4, "focal::view supports ranks 1 to 4");
    static_assert(is_memory_space_v<Space>, "Space must be focal::host_space or focal::device_space");

public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using index_type = index_t;
    using memory_space = Space;
    static constexpr std::size_t rank() noexcept { return Rank; }

    // An empty view: null data, every extent 0. Drivers treat it as "not requested".
    FOCAL_HD constexpr view() noexcept {
        for (std::size_t r = 0; r < Rank; ++r) extents_[r] = strides_[r] = 0;
    }

    // Row-major (C order) view: the last index is contiguous.
    template <class... Extents>
        requires(sizeof...(Extents) == Rank && (std::is_integral_v<Extents> && ...))
    FOCAL_HD constexpr view(T* data, Extents... extents) noexcept : data_(data) {
        const index_t e[] = {static_cast<index_t>(extents)...};
        // Unsigned: extents whose product overflows give wrapped strides here, not undefined
        // behaviour; the drivers reject such views (detail::require_valid_extents).
        std::make_unsigned_t<index_t> stride = 1;
        for (std::size_t r = Rank; r-- > 0;) {
            extents_[r] = e[r];
            strides_[r] = static_cast<index_t>(stride);
            stride *= static_cast<std::make_unsigned_t<index_t>>(e[r]);
        }
    }

    // Fully strided view; strides are in elements and may be any value (Eigen's outer stride,
    // a column of a row-major matrix, xtensor's 0 stride on unit extents).
    FOCAL_HD constexpr view(T* data, const index_t (&extents)[Rank], const index_t (&strides)[Rank]) noexcept
        : data_(data) {
        for (std::size_t r = 0; r < Rank; ++r) {
            extents_[r] = extents[r];
            strides_[r] = strides[r];
        }
    }

    // view<T> converts to view<const T>, never the reverse, and never across memory spaces.
    template <class U>
        requires(!std::is_same_v<U, T> && std::is_convertible_v<U (*)[], T (*)[]>)
    FOCAL_HD constexpr view(const view<U, Rank, Space>& other) noexcept : data_(other.data_handle()) {
        for (std::size_t r = 0; r < Rank; ++r) {
            extents_[r] = other.extent(r);
            strides_[r] = other.stride(r);
        }
    }

    FOCAL_HD constexpr T* data_handle() const noexcept { return data_; }
    FOCAL_HD constexpr index_t extent(std::size_t r) const noexcept { return extents_[r]; }
    FOCAL_HD constexpr index_t stride(std::size_t r) const noexcept { return strides_[r]; }
    FOCAL_HD constexpr index_t size() const noexcept {
        index_t n = 1;
        for (std::size_t r = 0; r < Rank; ++r) n *= extents_[r];
        return n;
    }
    FOCAL_HD constexpr bool empty() const noexcept { return size() == 0; }
    // True for a view the caller did not provide (default constructed).
    FOCAL_HD constexpr bool is_null() const noexcept { return data_ == nullptr && size() == 0; }

    template <class... Indices>
        requires(sizeof...(Indices) == Rank)
    FOCAL_HD constexpr T& operator()(Indices... indices) const noexcept {
        const index_t i[] = {static_cast<index_t>(indices)...};
        index_t offset = 0;
        for (std::size_t r = 0; r < Rank; ++r) offset += i[r] * strides_[r];
        return data_[offset];
    }

    // The view with its two dimensions swapped (no data moves).
    FOCAL_HD constexpr view transposed() const noexcept
        requires(Rank == 2)
    {
        return view(data_, {extents_[1], extents_[0]}, {strides_[1], strides_[0]});
    }

    // Elements of each row are adjacent in memory (stride(1) == 1, or a single column).
    FOCAL_HD constexpr bool rows_contiguous() const noexcept
        requires(Rank == 2)
    {
        return strides_[1] == 1 || extents_[1] <= 1;
    }

private:
    T* data_ = nullptr;
    index_t extents_[Rank];
    index_t strides_[Rank];
};

template <class T, class Space = host_space>
using vector_view = view<T, 1, Space>;
template <class T, class Space = host_space>
using matrix_view = view<T, 2, Space>;
template <class T, class Space = host_space>
using tensor3_view = view<T, 3, Space>;  // a batch of matrices: B x rows x columns

template <class T>
inline constexpr bool is_view_v = false;
template <class T, std::size_t R, class S>
inline constexpr bool is_view_v<view<T, R, S>> = true;

// ---- slicing (std::submdspan's two common cases) ----

// v with its leading index fixed at i: rank R - 1 (submdspan(v, i, full_extent, ...)). i must be
// in [0, extent(0)); no element is formed when the slice is empty.
template <class T, std::size_t R, class S>
    requires(R >= 2)
FOCAL_HD constexpr view<T, R - 1, S> slice(const view<T, R, S>& v, index_t i) noexcept {
    index_t extents[R - 1], strides[R - 1];
    index_t inner = 1;
    for (std::size_t r = 1; r < R; ++r) {
        extents[r - 1] = v.extent(r);
        strides[r - 1] = v.stride(r);
        inner *= v.extent(r);
    }
    return view<T, R - 1, S>(inner > 0 ? v.data_handle() + i * v.stride(0) : v.data_handle(), extents, strides);
}

// Leading indices [begin, end) of v, the rank kept (submdspan(v, pair{begin, end}, full_extent, ...)).
// Requires 0 <= begin <= end <= extent(0); no element is formed when the range is empty.
template <class T, std::size_t R, class S>
FOCAL_HD constexpr view<T, R, S> leading_range(const view<T, R, S>& v, index_t begin, index_t end) noexcept {
    index_t extents[R], strides[R];
    index_t inner = 1;
    for (std::size_t r = 0; r < R; ++r) {
        extents[r] = v.extent(r);
        strides[r] = v.stride(r);
        if (r > 0) inner *= v.extent(r);
    }
    extents[0] = end - begin;
    return view<T, R, S>(inner > 0 && end > begin ? v.data_handle() + begin * v.stride(0) : v.data_handle(), extents, strides);
}

// ---- making views from raw pointers and std::span (host memory) ----

template <class T>
constexpr vector_view<T> make_view(T* data, index_t n) noexcept {
    return vector_view<T>(data, n);
}
template <class T>
constexpr matrix_view<T> make_view(T* data, index_t rows, index_t cols) noexcept {
    return matrix_view<T>(data, rows, cols);
}
template <class T, std::size_t E>
constexpr vector_view<T> make_view(std::span<T, E> s) noexcept {
    return vector_view<T>(s.data(), static_cast<index_t>(s.size()));
}
// A row-major rows x cols view of a span; the span must hold exactly rows * cols elements.
template <class T, std::size_t E>
matrix_view<T> make_view(std::span<T, E> s, index_t rows, index_t cols) {
    // rows * cols is formed only when it cannot overflow (a wrapped product could match the span).
    detail::require(rows >= 0 && cols >= 0 && (cols == 0 || rows <= std::numeric_limits<index_t>::max() / cols) &&
                        static_cast<index_t>(s.size()) == rows * cols, "focal::make_view",
                    "span size", "rows * cols = " + std::to_string(rows) + " * " + std::to_string(cols),
                    s.size());
    return matrix_view<T>(s.data(), rows, cols);
}

// The view over a device pointer: only focal's CUDA entry points accept it.
template <class T, class... Extents>
constexpr view<T, sizeof...(Extents), device_space> make_device_view(T* data, Extents... extents) noexcept {
    return view<T, sizeof...(Extents), device_space>(data, extents...);
}

namespace detail {
// "[201600 x 80]" for messages.
template <class T, std::size_t R, class S>
std::string shape_string(const view<T, R, S>& v) {
    std::string s = "[";
    for (std::size_t r = 0; r < R; ++r) {
        if (r) s += " x ";
        s += std::to_string(v.extent(r));
    }
    return s + "]";
}
}  // namespace detail

}  // namespace focal
