// The layer contract. forward() computes y = f(x) and, in training mode (grad_enabled()), pushes
// what backward needs onto a stack; backward(dy) pops the latest entry, accumulates (+=) the
// parameters' gradients and returns dx. A layer applied several times before backward (the
// RetinaNet heads run once per pyramid level) is unwound in reverse order, like autograd.
#pragma once

#include <string>

#include "tensor.hpp"

namespace retinanet::cpu {

template <class T>
class layer {
public:
    virtual ~layer() = default;
    virtual tensor<T> forward(const tensor<T>& x) = 0;
    virtual tensor<T> backward(const tensor<T>& dy) = 0;
    virtual void parameters(parameter_list<T>&) {}
    virtual void clear() = 0;  // drops any cached forward state
};

}  // namespace retinanet::cpu
