// focal/adapt/eigen.hpp: Eigen matrices, maps and refs as focal views, and views as Eigen maps.
//
//   focal::as_view(m)         vector_view for a compile-time vector, matrix_view otherwise
//   focal::as_matrix_view(m)  always rank 2 (a VectorXf becomes N x 1)
//   focal::as_eigen(v)        Eigen::Map over a view's memory, strides kept
// Nothing is copied. Any expression with direct access works: Matrix, Array, Map (with any
// Stride), Ref and blocks of them, row- or column-major. A const object gives a view of const.
#pragma once

#include <type_traits>

#include <Eigen/Core>

#include "../core/checks.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"

namespace focal {

namespace detail {
// A view of a temporary Matrix / Array would dangle at the end of the statement; Maps, Refs and
// blocks only refer to memory owned elsewhere, so their temporaries are fine.
template <class M>
inline constexpr bool eigen_owning_temporary_v =
    !std::is_lvalue_reference_v<M> &&
    std::is_base_of_v<Eigen::PlainObjectBase<std::remove_cvref_t<M>>, std::remove_cvref_t<M>>;

template <class M>
concept eigen_direct_access = std::is_base_of_v<Eigen::DenseBase<std::remove_cvref_t<M>>, std::remove_cvref_t<M>> &&
                              (bool(Eigen::internal::traits<std::remove_cvref_t<M>>::Flags & Eigen::DirectAccessBit));
}  // namespace detail

template <class M>
    requires detail::eigen_direct_access<M>
auto as_matrix_view(M&& m) {
    static_assert(!detail::eigen_owning_temporary_v<M>,
                  "focal::as_matrix_view: the argument is a temporary Eigen matrix; the view would dangle");
    using D = std::remove_cvref_t<M>;
    auto* data = m.data();  // const Scalar* for const objects, Scalar* otherwise
    using E = std::remove_pointer_t<decltype(data)>;
    const index_t inner = m.innerStride(), outer = m.outerStride();
    const index_t s0 = D::IsRowMajor ? outer : inner, s1 = D::IsRowMajor ? inner : outer;
    return matrix_view<E>(data, {index_t(m.rows()), index_t(m.cols())}, {s0, s1});
}

template <class M>
    requires detail::eigen_direct_access<M>
auto as_view(M&& m) {
    static_assert(!detail::eigen_owning_temporary_v<M>,
                  "focal::as_view: the argument is a temporary Eigen matrix; the view would dangle");
    using D = std::remove_cvref_t<M>;
    if constexpr (D::IsVectorAtCompileTime) {
        auto* data = m.data();
        using E = std::remove_pointer_t<decltype(data)>;
        return vector_view<E>(data, {index_t(m.size())}, {index_t(m.innerStride())});
    } else {
        return as_matrix_view(m);
    }
}

template <class T>
auto as_eigen(const matrix_view<T>& v) {
    detail::require_valid_extents(v, "focal::as_eigen", "view");  // Eigen would take a negative size unchecked
    using S = std::remove_const_t<T>;
    using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Target = std::conditional_t<std::is_const_v<T>, const Mat, Mat>;
    return Eigen::Map<Target, Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>(
        v.data_handle(), v.extent(0), v.extent(1), Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(v.stride(0), v.stride(1)));
}

template <class T>
auto as_eigen(const vector_view<T>& v) {
    detail::require_valid_extents(v, "focal::as_eigen", "view");
    using S = std::remove_const_t<T>;
    using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
    using Target = std::conditional_t<std::is_const_v<T>, const Vec, Vec>;
    return Eigen::Map<Target, Eigen::Unaligned, Eigen::InnerStride<Eigen::Dynamic>>(v.data_handle(), v.extent(0),
                                                                                    Eigen::InnerStride<Eigen::Dynamic>(v.stride(0)));
}

}  // namespace focal
