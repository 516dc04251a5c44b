// focal/core/size2d.hpp: the height and width of an image or a feature map, in pixels or cells.
#pragma once

#include "view.hpp"

namespace focal {

struct size2d {
    index_t height = 0, width = 0;
};

}  // namespace focal
