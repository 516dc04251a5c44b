// Adapters: Eigen and xtensor objects as views and back, without copies, and the loss through
// each adapter equal to the loss on the raw pointer.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <Eigen/Core>
#include <doctest/doctest.h>
#include <focal/adapt/eigen.hpp>
#include <focal/adapt/xtensor.hpp>
#include <focal/retinanet.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

using focal::index_t;

namespace {

constexpr index_t rows = 97, cols = 11;

struct reference {
    std::vector<float> logits;
    std::vector<std::int32_t> labels;
    std::vector<float> grad;
    double value;

    reference() : logits(rows * cols), labels(rows), grad(rows * cols) {
        std::mt19937 rng(11);
        std::normal_distribution<float> normal(-2.0f, 2.0f);
        for (auto& x : logits) x = normal(rng);
        for (index_t i = 0; i < rows; ++i) labels[i] = static_cast<std::int32_t>(i % 7 == 0 ? -2 : (i % 3 == 0 ? i % cols : -1));
        value = focal::classification_loss(loss(), focal::make_view(logits.data(), rows, cols), focal::make_view(labels.data(), rows),
                                           focal::reduction::sum(), {.grad = focal::make_view(grad.data(), rows, cols)});
    }
    static focal::sigmoid_focal_loss loss() { return {0.25f, 2.0f}; }
    float at(index_t i, index_t k) const { return logits[i * cols + k]; }
    float grad_at(index_t i, index_t k) const { return grad[i * cols + k]; }
};

const reference& ref() {
    static const reference r;
    return r;
}

// Runs the loss through the given logits / labels / grad views and checks value and gradient.
template <class X, class L, class G, class GradAt>
void check_same_as_raw(const X& x, const L& labels, const G& grad, const GradAt& grad_at) {
    const double v = focal::classification_loss(reference::loss(), x, labels, focal::reduction::sum(), {.grad = grad});
    CHECK(v == ref().value);
    for (index_t i = 0; i < rows; ++i)
        for (index_t k = 0; k < cols; ++k) CHECK(grad_at(i, k) == ref().grad_at(i, k));
}

}  // namespace

TEST_CASE("std::span gives the raw-pointer result") {
    const auto& r = ref();
    std::span<const float> logits(r.logits);
    std::span<const std::int32_t> labels(r.labels);
    std::vector<float> g(r.grad.size());
    check_same_as_raw(focal::make_view(logits, rows, cols), focal::make_view(labels), focal::make_view(std::span(g), rows, cols),
                      [&](index_t i, index_t k) { return g[i * cols + k]; });
    CHECK_THROWS_AS(focal::make_view(logits, rows, cols + 1), focal::error);
}

TEST_CASE("Eigen: row-major, column-major, strided maps and blocks give the raw-pointer result") {
    const auto& r = ref();
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::VectorXi labels = Eigen::Map<const Eigen::VectorXi>(r.labels.data(), rows);

    SUBCASE("row-major matrix") {
        const RowMajor x = Eigen::Map<const RowMajor>(r.logits.data(), rows, cols);
        RowMajor g(rows, cols);
        const auto xv = focal::as_view(x);
        CHECK(xv.data_handle() == x.data());  // no copy
        CHECK(xv.stride(0) == cols);
        CHECK(xv.stride(1) == 1);
        check_same_as_raw(xv, focal::as_view(labels), focal::as_view(g), [&](index_t i, index_t k) { return g(i, k); });
    }
    SUBCASE("column-major matrix (Eigen's default)") {
        const Eigen::MatrixXf x = Eigen::Map<const RowMajor>(r.logits.data(), rows, cols);
        Eigen::MatrixXf g(rows, cols);
        CHECK(focal::as_view(x).stride(0) == 1);
        CHECK(focal::as_view(x).stride(1) == rows);
        check_same_as_raw(focal::as_view(x), focal::as_view(labels), focal::as_view(g), [&](index_t i, index_t k) { return g(i, k); });
    }
    SUBCASE("a block of a larger matrix and a map with an outer stride") {
        Eigen::MatrixXf big = Eigen::MatrixXf::Constant(rows + 5, cols + 4, std::nanf(""));
        big.block(2, 3, rows, cols) = Eigen::Map<const RowMajor>(r.logits.data(), rows, cols);
        RowMajor gbig = RowMajor::Zero(rows + 3, cols + 6);
        auto gblock = gbig.block(1, 2, rows, cols);
        check_same_as_raw(focal::as_view(big.block(2, 3, rows, cols)), focal::as_view(labels), focal::as_view(gblock),
                          [&](index_t i, index_t k) { return gbig(i + 1, k + 2); });
        CHECK(gbig(0, 0) == 0.0f);

        std::vector<float> padded((rows) * (cols + 5));
        for (index_t i = 0; i < rows; ++i)
            for (index_t k = 0; k < cols; ++k) padded[i * (cols + 5) + k] = r.at(i, k);
        Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>> map(padded.data(), rows, cols, Eigen::OuterStride<>(cols + 5));
        std::vector<float> g(r.grad.size());
        check_same_as_raw(focal::as_view(map), focal::as_view(labels), focal::make_view(g.data(), rows, cols),
                          [&](index_t i, index_t k) { return g[i * cols + k]; });
    }
}

TEST_CASE("Eigen round trip: as_eigen(view) maps the same memory with the same strides") {
    Eigen::MatrixXd m = Eigen::MatrixXd::Random(6, 4);
    const auto v = focal::as_view(m);
    auto back = focal::as_eigen(v);
    CHECK(back.data() == m.data());
    CHECK(back == m);
    back(2, 3) = 42.0;  // writes through
    CHECK(m(2, 3) == 42.0);
    const auto cv = focal::as_view(std::as_const(m));
    static_assert(std::is_const_v<std::remove_pointer_t<decltype(cv.data_handle())>>);
    const auto row = focal::as_eigen(focal::make_view(m.data() + 1, 4));
    CHECK(row.size() == 4);
}

TEST_CASE("xtensor: containers, adaptors and views of storage give the raw-pointer result") {
    const auto& r = ref();
    xt::xtensor<float, 2> x = xt::adapt(r.logits, std::array<std::size_t, 2>{rows, cols});
    xt::xtensor<std::int32_t, 1> labels = xt::adapt(r.labels, std::array<std::size_t, 1>{rows});
    xt::xtensor<float, 2> g = xt::zeros<float>({rows, cols});
    CHECK(focal::as_view(x).data_handle() == x.data());
    check_same_as_raw(focal::as_view(x), focal::as_view(labels), focal::as_view(g), [&](index_t i, index_t k) { return g(i, k); });

    SUBCASE("column-major xtensor") {
        xt::xtensor<float, 2, xt::layout_type::column_major> xc = x;
        xt::xtensor<float, 2, xt::layout_type::column_major> gc = xt::zeros<float>({rows, cols});
        check_same_as_raw(focal::as_view(xc), focal::as_view(labels), focal::as_view(gc), [&](index_t i, index_t k) { return gc(i, k); });
    }
    SUBCASE("xarray with an explicit rank") {
        xt::xarray<float> xa = x;
        xt::xarray<float> ga = xt::zeros<float>({rows, cols});
        check_same_as_raw(focal::as_view<2>(xa), focal::as_view(labels), focal::as_view<2>(ga), [&](index_t i, index_t k) { return ga(i, k); });
        CHECK_THROWS_AS(focal::as_view<1>(xa), focal::error);
    }
    SUBCASE("as_xtensor maps a view back, strides kept") {
        const auto back = focal::as_xtensor(focal::as_view(x));
        CHECK(back.data() == x.data());
        CHECK(back == x);
        std::vector<double> buf(3 * 8, 0.0);
        const focal::matrix_view<double> strided(buf.data(), {3, 4}, {8, 2});
        auto xs = focal::as_xtensor(strided);
        xs(2, 3) = 5.0;
        CHECK(buf[2 * 8 + 3 * 2] == 5.0);
    }
}
