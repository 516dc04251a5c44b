// focal/retinanet.hpp: everything focal offers on the host. Adapters are opt-in:
// <focal/adapt/eigen.hpp>, <focal/adapt/xtensor.hpp>.
#pragma once

#include "core.hpp"
#include "loss.hpp"
