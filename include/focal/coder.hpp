// focal/coder.hpp: box coding: the delta (dx, dy, dw, dh) coder and the batch encode / decode drivers.
#pragma once

#include "core.hpp"
#include "coder/box_coding.hpp"
#include "coder/delta_xywh.hpp"
