// focal/box.hpp: boxes: formats, areas, IoU / GIoU, overlaps in both pixel conventions, pairwise matrices.
#pragma once

#include "core.hpp"
#include "box/box4.hpp"
#include "box/format.hpp"
#include "box/iou.hpp"
#include "box/overlap.hpp"
#include "box/pairwise.hpp"
