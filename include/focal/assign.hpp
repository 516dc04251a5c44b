// focal/assign.hpp: anchor to ground-truth assignment: the max-IoU matcher and the training targets.
#pragma once

#include "core.hpp"
#include "assign/match.hpp"
#include "assign/match_output.hpp"
#include "assign/max_iou_matcher.hpp"
#include "assign/targets.hpp"
