// focal/anchor.hpp: anchor generation: cell anchors, grids over feature maps, the detectors' presets.
#pragma once

#include "core.hpp"
#include "anchor/anchor_spec.hpp"
#include "anchor/cell_anchors.hpp"
#include "anchor/generate.hpp"
#include "anchor/grid.hpp"
#include "anchor/presets.hpp"
