// focal/core/memory_space.hpp: tags saying where a view's memory lives.
//
// Host algorithms accept only host views and CUDA entry points only device views; the tag is part
// of the view's type, so mixing them up fails to compile instead of crashing at run time.
#pragma once

#include <type_traits>

namespace focal {

struct host_space {
    static constexpr const char* name = "host";
};
struct device_space {
    static constexpr const char* name = "device";
};

template <class Space>
inline constexpr bool is_memory_space_v =
    std::is_same_v<Space, host_space> || std::is_same_v<Space, device_space>;

}  // namespace focal
