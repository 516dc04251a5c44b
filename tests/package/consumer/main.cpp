// focal_consumer: what a user of the packaged focal writes, checked against the closed formula.
//
// Built by tests/package (find_package and add_subdirectory). Computes a sigmoid focal loss with
// integer labels through focal::classification_loss on Eigen and xtensor views, compares the
// value and the gradient with a double-precision reference written out by hand, and checks that a
// label out of range throws focal::error. Exits non-zero on any mismatch.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <xtensor/xtensor.hpp>

#include <focal/adapt/eigen.hpp>
#include <focal/adapt/xtensor.hpp>
#include <focal/retinanet.hpp>

#ifndef FOCAL_CONSUMER_EXPECT_XSIMD
#error "the consumer project defines FOCAL_CONSUMER_EXPECT_XSIMD"
#endif
static_assert(FOCAL_HAS_XSIMD == FOCAL_CONSUMER_EXPECT_XSIMD,
              "focal::xsimd must turn the SIMD backend on, and only focal::xsimd");
static_assert(focal::version.major == 0 && focal::version.minor == 1);

namespace {

constexpr int anchors = 7;
constexpr int classes = 3;
constexpr float alpha = 0.25f;
constexpr float gamma_ = 2.0f;

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        std::printf("FAILED: %s\n", what.c_str());
        ++failures;
    }
}

bool close(double got, double expected, double rel) {
    return std::fabs(got - expected) <= rel * (std::fabs(expected) + 1e-30) + 1e-12;
}

// The focal loss of one logit, from its definition (Lin et al. 2017):
//   p = sigmoid(x), p_t = p if t else 1 - p, alpha_t = alpha if t else 1 - alpha,
//   FL = -alpha_t (1 - p_t)^gamma log(p_t)
// and its derivative: with z = x if t else -x, dFL/dz = alpha_t q^gamma (gamma p_t log(p_t) - q),
// q = 1 - p_t, and dFL/dx = dFL/dz if t else -dFL/dz.
double reference_value(double x, bool t) {
    const double p = 1.0 / (1.0 + std::exp(-x));
    const double pt = t ? p : 1.0 - p;
    const double at = t ? alpha : 1.0 - alpha;
    return -at * std::pow(1.0 - pt, gamma_) * std::log(pt);
}
double reference_grad(double x, bool t) {
    const double z = t ? x : -x;
    const double pt = 1.0 / (1.0 + std::exp(-z));
    const double q = 1.0 - pt;
    const double at = t ? alpha : 1.0 - alpha;
    const double dz = at * std::pow(q, gamma_) * (gamma_ * pt * std::log(pt) - q);
    return t ? dz : -dz;
}

double logit(int i, int k) { return -3.5 + 0.37 * i + 1.1 * k - 0.05 * i * k; }

}  // namespace

int main() {
    // Labels: class k >= 0, -1 background, -2 ignored.
    const std::vector<int> labels = {0, 2, -1, 1, -2, 0, 2};
    const auto label_view = focal::make_view(labels.data(), anchors);
    const focal::sigmoid_focal_loss loss{alpha, gamma_};

    // The reference sum and gradient (reduction::sum; ignored anchors contribute nothing).
    double ref_sum = 0;
    int contributing = 0;
    Eigen::MatrixXd ref_grad = Eigen::MatrixXd::Zero(anchors, classes);
    for (int i = 0; i < anchors; ++i) {
        if (labels[i] == -2) continue;
        ++contributing;
        for (int k = 0; k < classes; ++k) {
            const bool t = labels[i] == k;
            ref_sum += reference_value(logit(i, k), t);
            ref_grad(i, k) = reference_grad(logit(i, k), t);
        }
    }
    const double ref_mean = ref_sum / (contributing * classes);

    // 1. Eigen, column-major float logits and gradient (Eigen's default), default execution (SIMD).
    Eigen::MatrixXf logits(anchors, classes);
    for (int i = 0; i < anchors; ++i)
        for (int k = 0; k < classes; ++k) logits(i, k) = static_cast<float>(logit(i, k));
    Eigen::MatrixXf grad = Eigen::MatrixXf::Constant(anchors, classes, 42.0f);
    const double sum = focal::classification_loss(loss, focal::as_matrix_view(logits), label_view,
                                                  focal::reduction::sum(), {focal::as_matrix_view(grad), {}});
    std::printf("Eigen float:    sum %.9g (reference %.9g)\n", sum, ref_sum);
    check(close(sum, ref_sum, 1e-5), "Eigen float sum");
    for (int i = 0; i < anchors; ++i)
        for (int k = 0; k < classes; ++k)
            check(close(grad(i, k), ref_grad(i, k), 1e-5),
                  "Eigen float grad(" + std::to_string(i) + ", " + std::to_string(k) + ") = " +
                      std::to_string(grad(i, k)) + ", reference " + std::to_string(ref_grad(i, k)));

    // 2. Eigen, row-major const logits, mean reduction, scalar execution.
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = logits;
    const double mean = focal::classification_loss(loss, focal::as_matrix_view(row_major), label_view,
                                                   focal::reduction::mean(), {}, focal::exec::scalar);
    std::printf("Eigen row-major: mean %.9g (reference %.9g)\n", mean, ref_mean);
    check(close(mean, ref_mean, 1e-5), "Eigen row-major float mean (scalar execution)");

    // 3. xtensor, double logits: agrees with the double reference to rounding.
    xt::xtensor<double, 2> xlogits = xt::zeros<double>({anchors, classes});
    for (int i = 0; i < anchors; ++i)
        for (int k = 0; k < classes; ++k) xlogits(i, k) = logit(i, k);
    xt::xtensor<double, 2> xgrad = xt::zeros<double>({anchors, classes});
    const double xsum = focal::classification_loss(loss, focal::as_view(xlogits), label_view, focal::reduction::sum(),
                                                   {focal::as_view(xgrad), {}});
    std::printf("xtensor double:  sum %.17g (reference %.17g)\n", xsum, ref_sum);
    check(close(xsum, ref_sum, 1e-12), "xtensor double sum");
    for (int i = 0; i < anchors; ++i)
        for (int k = 0; k < classes; ++k) check(close(xgrad(i, k), ref_grad(i, k), 1e-12), "xtensor double grad");

    // 4. A label out of range ([-2, classes)) throws focal::error and writes nothing.
    std::vector<int> bad_labels = labels;
    bad_labels[3] = classes;
    grad.setConstant(42.0f);
    bool threw = false;
    try {
        focal::classification_loss(loss, focal::as_matrix_view(logits), focal::make_view(bad_labels.data(), anchors),
                                   focal::reduction::sum(), {focal::as_matrix_view(grad), {}});
    } catch (const focal::error& e) {
        threw = true;
        const std::string message = e.what();
        std::printf("label %d out of range: focal::error \"%s\"\n", classes, message.c_str());
        check(message.find("labels") != std::string::npos, "the message names the labels argument");
        check((grad.array() == 42.0f).all(), "nothing written to output.grad before the error");
    }
    check(threw, "focal::error thrown for a label out of range");
    bool is_invalid_argument = false;
    try {
        bad_labels[3] = -3;
        focal::classification_loss(loss, focal::as_matrix_view(logits), focal::make_view(bad_labels.data(), anchors));
    } catch (const std::invalid_argument&) {
        is_invalid_argument = true;
    }
    check(is_invalid_argument, "label -3 throws, and focal::error is a std::invalid_argument");

    if (failures) {
        std::printf("focal_consumer: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("focal_consumer: all checks passed (focal %d.%d.%d, xsimd %s)\n", focal::version.major,
                focal::version.minor, focal::version.patch, FOCAL_HAS_XSIMD ? "on" : "off");
    return 0;
}
