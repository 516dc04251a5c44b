// focal on Eigen and xtensor data, without copies: as_view() wraps the container's memory with its
// strides (row- or column-major, blocks, maps), as_eigen() / as_xtensor() map a view back.
//
//   build/examples/example_eigen_xtensor
#include <cstdio>

#include <Eigen/Core>
#include <focal/adapt/eigen.hpp>
#include <focal/adapt/xtensor.hpp>
#include <focal/retinanet.hpp>
#include <xtensor/xtensor.hpp>

int main() {
    const focal::sigmoid_focal_loss loss;  // alpha 0.25, gamma 2

    // Eigen: a column-major matrix (Eigen's default) of logits, labels in a VectorXi.
    Eigen::MatrixXf logits = Eigen::MatrixXf::Random(1000, 20) * 4.0f;
    Eigen::VectorXi labels = Eigen::VectorXi::Constant(1000, -1);
    labels(7) = 3;
    labels(42) = 19;
    Eigen::MatrixXf grad(1000, 20);
    const double v_eigen = focal::classification_loss(loss, focal::as_view(logits), focal::as_view(labels),
                                                      focal::reduction::divide_by(2.0), {.grad = focal::as_view(grad)});
    std::printf("Eigen:   loss %.6f, grad(7, 3) %+.4f\n", v_eigen, grad(7, 3));

    // xtensor: the same numbers in a row-major xtensor, written through as_xtensor(view).
    xt::xtensor<float, 2> xlogits = xt::zeros<float>({1000, 20});
    auto mapped = focal::as_xtensor(focal::as_view(xlogits));
    for (int i = 0; i < 1000; ++i)
        for (int k = 0; k < 20; ++k) mapped(i, k) = logits(i, k);
    xt::xtensor<int, 1> xlabels = xt::zeros<int>({1000});
    for (int i = 0; i < 1000; ++i) xlabels(i) = labels(i);
    const double v_xtensor = focal::classification_loss(loss, focal::as_view(xlogits), focal::as_view(xlabels),
                                                        focal::reduction::divide_by(2.0));
    std::printf("xtensor: loss %.6f (same data, other layout)\n", v_xtensor);
    return 0;
}
