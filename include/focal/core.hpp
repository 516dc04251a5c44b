// focal/core.hpp: views, errors, math, execution policies.
#pragma once

#include "config.hpp"
#include "core/checks.hpp"
#include "core/error.hpp"
#include "core/execution.hpp"
#include "core/math.hpp"
#include "core/memory_space.hpp"
#include "core/host_packet.hpp"
#include "core/labels.hpp"
#include "core/size2d.hpp"
#include "core/thread_pool.hpp"
#include "core/view.hpp"
