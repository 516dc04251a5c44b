// focal/core/checks.hpp: shape and value checks shared by the checked entry points.
#pragma once

#include <string>

#include "error.hpp"
#include "view.hpp"

namespace focal::detail {

// `what` (e.g. "output.grad") must have exactly the shape of `like` (e.g. "logits").
template <class T, class U, std::size_t R, class S>
void require_same_shape(const view<T, R, S>& v, const view<U, R, S>& like, const char* where, const char* what,
                        const char* like_name) {
    bool same = true;
    for (std::size_t r = 0; r < R; ++r) same = same && v.extent(r) == like.extent(r);
    require(same, where, what, std::string("of the shape of ") + like_name + " " + shape_string(like), shape_string(v));
}

template <class T, std::size_t R, class S>
void require_data(const view<T, R, S>& v, const char* where, const char* what) {
    require(v.data_handle() != nullptr || v.size() == 0, where, what, "a non-null pointer when not empty",
            "a null pointer with shape ", shape_string(v));
}

template <class T, std::size_t R, class S>
void require_extent(const view<T, R, S>& v, std::size_t r, index_t expected, const char* where, const char* what) {
    require(v.extent(r) == expected, where, what,
            "of extent " + std::to_string(expected) + " in dimension " + std::to_string(r), shape_string(v));
}

}  // namespace focal::detail
