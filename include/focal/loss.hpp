// focal/loss.hpp: the loss policies and the drivers that run them over views.
#pragma once

#include "core.hpp"
#include "loss/binary_cross_entropy.hpp"
#include "loss/box_regression_loss.hpp"
#include "loss/classification_loss.hpp"
#include "loss/giou.hpp"
#include "loss/logistic.hpp"
#include "loss/loss_output.hpp"
#include "loss/reduction.hpp"
#include "loss/sigmoid_focal.hpp"
#include "loss/smooth_l1.hpp"
#include "loss/value_grad.hpp"
