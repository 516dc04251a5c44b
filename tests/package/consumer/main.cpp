// focal_consumer: what a user of the packaged focal writes, checked against the closed formula.
//
// Built by tests/package (find_package and add_subdirectory). Computes a sigmoid focal loss with
// integer labels through focal::classification_loss on Eigen and xtensor views, compares the
// value and the gradient with a double-precision reference written out by hand, and checks that a
// label out of range throws focal::error. Then a box regression loss with per-box values
// (focal::box_loss_output, reduction::none) and the label constants of <focal/core/labels.hpp>.
// Exits non-zero on any mismatch.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
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
static_assert(focal::version.major == 0 && focal::version.minor == 2);
static_assert(focal::background_label == -1 && focal::ignored_label == -2);

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
    const std::vector<int> labels = {0, 2, focal::background_label, 1, focal::ignored_label, 0, 2};
    const auto label_view = focal::make_view(labels.data(), anchors);
    const focal::sigmoid_focal_loss loss{alpha, gamma_};

    // The reference sum and gradient (reduction::sum; ignored anchors contribute nothing).
    double ref_sum = 0;
    int contributing = 0;
    Eigen::MatrixXd ref_grad = Eigen::MatrixXd::Zero(anchors, classes);
    for (int i = 0; i < anchors; ++i) {
        if (labels[i] == focal::ignored_label) continue;
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
        check((grad.array() == 42.0f).all(), "nothing written to out.grad before the error");
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

    // 5. Box regression (L1 on deltas) over the positive anchors, reduction::none: the sum, each
    //    positive box's loss in out.values (0 elsewhere), the unscaled gradient in out.grad.
    Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor> deltas(anchors, 4), targets(anchors, 4), box_grad(anchors, 4);
    double ref_box = 0;
    std::vector<double> ref_values(anchors, 0.0);
    for (int i = 0; i < anchors; ++i)
        for (int c = 0; c < 4; ++c) {
            deltas(i, c) = 0.25f * static_cast<float>(i - c);
            targets(i, c) = 0.5f * static_cast<float>(c) - 0.125f;
            if (labels[i] >= 0) ref_values[i] += std::fabs(static_cast<double>(deltas(i, c)) - static_cast<double>(targets(i, c)));
        }
    for (double v : ref_values) ref_box += v;
    std::vector<float> values(anchors, 42.0f);
    box_grad.setConstant(42.0f);
    const double box = focal::box_regression_loss(focal::l1_loss{}, focal::as_matrix_view(std::as_const(deltas)),
                                                  focal::as_matrix_view(std::as_const(targets)), label_view, focal::reduction::none(),
                                                  focal::box_loss_output<float>{focal::as_matrix_view(box_grad), focal::make_view(values.data(), anchors)},
                                                  focal::exec::parallel);
    std::printf("box l1 (none):   sum %.9g (reference %.9g)\n", box, ref_box);
    check(close(box, ref_box, 1e-6), "box_regression_loss sum (reduction::none)");
    for (int i = 0; i < anchors; ++i) {
        check(close(values[i], ref_values[i], 1e-6), "box_regression_loss out.values[" + std::to_string(i) + "]");
        for (int c = 0; c < 4; ++c) {
            const float d = deltas(i, c) - targets(i, c);
            const float want = labels[i] < 0 ? 0.0f : (d > 0 ? 1.0f : (d < 0 ? -1.0f : 0.0f));
            check(box_grad(i, c) == want, "box_regression_loss out.grad(" + std::to_string(i) + ", " + std::to_string(c) + ")");
        }
    }

    if (failures) {
        std::printf("focal_consumer: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("focal_consumer: all checks passed (focal %d.%d.%d, xsimd %s)\n", focal::version.major,
                focal::version.minor, focal::version.patch, FOCAL_HAS_XSIMD ? "on" : "off");
    return 0;
}
