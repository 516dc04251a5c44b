// focal/adapt/xtensor.hpp: xtensor containers and adaptors as focal views, and views as xtensor.
//
//   focal::as_view(e)      for a fixed-rank expression with storage (xtensor, xtensor_adaptor)
//   focal::as_view<R>(e)   for a dynamic-rank one (xarray); throws focal::error if the rank is not R
//   focal::as_xtensor(v)   an xtensor_adaptor over a view's memory (no ownership), strides kept
// Nothing is copied. xtensor stores stride 0 on unit extents; views accept that as it is.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xutils.hpp>

#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"

namespace focal {

namespace detail {
template <class E>
concept xtensor_storage = requires(E& e) {
    e.data();
    e.shape();
    e.strides();
    e.data_offset();
};

// xtensor and xarray containers own their memory, so a view of a temporary one would dangle at
// the end of the statement; adaptors (xt::adapt) refer to memory owned elsewhere.
template <class D>
inline constexpr bool is_owning_container_v = false;
template <class EC, std::size_t N, xt::layout_type L, class Tag>
inline constexpr bool is_owning_container_v<xt::xtensor_container<EC, N, L, Tag>> = true;
template <class EC, xt::layout_type L, class SC, class Tag>
inline constexpr bool is_owning_container_v<xt::xarray_container<EC, L, SC, Tag>> = true;
template <class E>
inline constexpr bool xtensor_owning_temporary_v =
    !std::is_lvalue_reference_v<E> && is_owning_container_v<std::remove_cvref_t<E>>;

template <std::size_t R, class E>
auto xtensor_view(E& e) {
    auto* data = e.data() + e.data_offset();
    using Elem = std::remove_pointer_t<decltype(data)>;
    require(e.dimension() == R, "focal::as_view", "the xtensor expression's rank", std::to_string(R), e.dimension());
    index_t extents[R], strides[R];
    for (std::size_t r = 0; r < R; ++r) {
        extents[r] = static_cast<index_t>(e.shape()[r]);
        strides[r] = static_cast<index_t>(e.strides()[r]);
    }
    return view<Elem, R>(data, extents, strides);
}
}  // namespace detail

template <class E>
    requires detail::xtensor_storage<std::remove_reference_t<E>> &&
             (xt::get_rank<std::remove_cvref_t<E>>::value != SIZE_MAX)
auto as_view(E&& e) {
    static_assert(!detail::xtensor_owning_temporary_v<E>, "focal::as_view: the argument is a temporary xtensor container; the view would dangle");
    return detail::xtensor_view<xt::get_rank<std::remove_cvref_t<E>>::value>(e);
}

template <std::size_t R, class E>
    requires detail::xtensor_storage<std::remove_reference_t<E>>
auto as_view(E&& e) {
    static_assert(!detail::xtensor_owning_temporary_v<E>, "focal::as_view: the argument is a temporary xtensor container; the view would dangle");
    return detail::xtensor_view<R>(e);
}

// xtensor sizes an adaptor's buffer by the number of elements (not by the span the strides
// cover); element access goes through the strides, so strided views index correctly, while
// storage-order functions (flat(), storage()) are meaningful for contiguous views only.
template <class T, std::size_t R>
auto as_xtensor(const view<T, R, host_space>& v) {
    detail::require_valid_extents(v, "focal::as_xtensor", "view");  // a negative extent would become a huge size_t
    std::array<std::size_t, R> shape;
    std::array<std::ptrdiff_t, R> strides;
    for (std::size_t r = 0; r < R; ++r) {
        shape[r] = static_cast<std::size_t>(v.extent(r));
        strides[r] = v.extent(r) == 1 ? 0 : v.stride(r);  // xtensor's convention for unit extents
    }
    return xt::adapt(v.data_handle(), static_cast<std::size_t>(v.size()), xt::no_ownership(), shape, strides);
}

}  // namespace focal
