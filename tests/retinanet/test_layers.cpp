// The example network's layers: forward against direct definitions, backward against central
// finite differences in double, for every layer and parameter.
#include <cmath>
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <functional>
#include <random>

#include <doctest/doctest.h>
#include <focal/core/error.hpp>

#include "backend/cpu/conv2d.hpp"
#include "backend/cpu/norm.hpp"
#include "backend/cpu/simple_layers.hpp"

using namespace retinanet::cpu;

namespace {

tensor<double> random_tensor(int c, int n, int h, int w, std::mt19937& rng, double scale = 1.0) {
    tensor<double> t(c, n, h, w);
    std::normal_distribution<double> d(0.0, scale);
    for (auto& v : t.data) v = d(rng);
    return t;
}

double dot(const tensor<double>& a, const tensor<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a.data[i] * b.data[i];
    return s;
}

// Checks backward of f(x) = <r, layer(x)> against central differences for x and every parameter.
void check_gradients(layer<double>& l, tensor<double> x, std::mt19937& rng, double tolerance = 1e-6) {
    set_grad_enabled(true);
    const tensor<double> y = l.forward(x);
    const tensor<double> r = random_tensor(y.c, y.n, y.h, y.w, rng);
    parameter_list<double> params;
    l.parameters(params);
    for (auto* p : params) std::fill(p->grad.begin(), p->grad.end(), 0.0);
    const tensor<double> dx = l.backward(r);

    set_grad_enabled(false);
    const double h = 1e-6;
    auto objective = [&] { return dot(r, l.forward(x)); };
    auto check = [&](double& value, double analytic, const std::string& what) {
        const double saved = value;
        value = saved + h;
        const double up = objective();
        value = saved - h;
        const double down = objective();
        value = saved;
        const double numeric = (up - down) / (2 * h);
        INFO(what << ": analytic " << analytic << ", numeric " << numeric);
        CHECK(std::abs(analytic - numeric) <= tolerance * (1 + std::abs(numeric)));
    };
    REQUIRE(dx.same_shape(x));
    for (std::size_t i = 0; i < x.size(); i += 1 + x.size() / 97) check(x.data[i], dx.data[i], "dx[" + std::to_string(i) + "]");
    for (auto* p : params) {
        if (!p->trainable) continue;
        for (std::size_t i = 0; i < p->size(); i += 1 + p->size() / 53) check(p->value[i], p->grad[i], p->name + "[" + std::to_string(i) + "]");
    }
    set_grad_enabled(true);
}

void randomize(layer<double>& l, std::mt19937& rng) {
    parameter_list<double> params;
    l.parameters(params);
    std::normal_distribution<double> d(0.0, 0.5);
    for (auto* p : params)
        for (auto& v : p->value) v = d(rng);
}

}  // namespace

// Both modes: training builds all im2col rows (kept for backward), inference blocks of them
// (several blocks on the 61 x 47 maps), with and without bias; inference gives the same bits on 1
// and 2 threads.
TEST_CASE("conv2d forward equals the direct definition of cross-correlation, in training and in inference") {
    std::mt19937 rng(1);
    for (const auto& size : {std::pair{9, 11}, {61, 47}})
        for (const auto& shape : {std::tuple{3, 1, 1}, {3, 2, 1}, {1, 1, 0}, {1, 2, 0}, {7, 2, 3}, {3, 2, 0}})
            for (const bool training : {false, true})
                for (const bool bias : {true, false}) {
                    const int h = size.first, w = size.second, k = std::get<0>(shape), s = std::get<1>(shape), pad = std::get<2>(shape);
                    INFO(k << "x" << k << " stride " << s << " padding " << pad << " on " << h << " x " << w
                           << std::string(training ? ", training" : ", inference") << std::string(bias ? ", bias" : ", no bias"));
                    conv2d<double> conv("c", {.in_channels = 3, .out_channels = 4, .kernel = k, .stride = s, .padding = pad, .bias = bias});
                    randomize(conv, rng);
                    const auto x = random_tensor(3, 2, h, w, rng);
                    set_grad_enabled(training);
                    set_threads(1);
                    const auto y_one = conv.forward(x);
                    set_threads(2);
                    const auto y = conv.forward(x);
                    conv.clear();
                    set_grad_enabled(true);
                    if (!training) CHECK(y_one.data == y.data);
                    REQUIRE(y.h == (h + 2 * pad - k) / s + 1);
                    REQUIRE(y.w == (w + 2 * pad - k) / s + 1);
                    for (int o = 0; o < 4; ++o)
                        for (int n = 0; n < 2; ++n)
                            for (int oy = 0; oy < y.h; ++oy)
                                for (int ox = 0; ox < y.w; ++ox) {
                                    double expected = bias ? conv.bias.value[o] : 0.0;
                                    for (int c = 0; c < 3; ++c)
                                        for (int i = 0; i < k; ++i)
                                            for (int j = 0; j < k; ++j) {
                                                const int iy = oy * s - pad + i, ix = ox * s - pad + j;
                                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                                expected += conv.weight.value[((o * 3 + c) * k + i) * k + j] * x.at(c, n, iy, ix);
                                            }
                                    CHECK(y.at(o, n, oy, ox) == doctest::Approx(expected).epsilon(1e-12));
                                }
                }
}

TEST_CASE("conv2d gradients match finite differences (kernels 1, 3, 7; strides 1, 2; threads 1 and 2)") {
    std::mt19937 rng(2);
    for (int t : {1, 2}) {
        set_threads(t);
        for (auto [k, s, pad, bias] : {std::tuple{3, 1, 1, true}, {3, 2, 1, false}, {1, 1, 0, true}, {1, 2, 0, true}, {7, 2, 3, true}}) {
            conv2d<double> conv("c", {.in_channels = 3, .out_channels = 5, .kernel = k, .stride = s, .padding = pad, .bias = bias});
            randomize(conv, rng);
            check_gradients(conv, random_tensor(3, 2, 10, 7, rng), rng);
        }
    }
    set_threads(2);
}

namespace {

// Max |a - ref| over two same-sized buffers, and max |ref|.
template <class A, class B>
std::pair<double, double> max_error(const A& a, const B& ref) {
    REQUIRE(a.size() == ref.size());
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        err = std::max(err, std::abs(static_cast<double>(a[i]) - static_cast<double>(ref[i])));
        scale = std::max(scale, std::abs(static_cast<double>(ref[i])));
    }
    return {err, scale};
}

template <class To, class From>
tensor<To> converted(const tensor<From>& t) {
    tensor<To> out(t.c, t.n, t.h, t.w);
    std::copy(t.data.begin(), t.data.end(), out.data.begin());
    return out;
}

struct conv_pass {
    tensor<float> y, dx;
    std::vector<float> dw, db;
};

conv_pass run_conv(conv2d<float>& conv, const tensor<float>& x, const tensor<float>& dy) {
    for (auto* p : {&conv.weight, &conv.bias}) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
    conv_pass r;
    r.y = conv.forward(x);
    r.dx = conv.backward(dy);
    r.dw.assign(conv.weight.grad.begin(), conv.weight.grad.end());
    r.db.assign(conv.bias.grad.begin(), conv.bias.grad.end());
    return r;
}

}  // namespace

// Winograd F(2x2, 3x3) and F(4x4, 3x3) against im2col + GEMM, all in float, each against a
// double reference: Winograd's error may be a few times im2col's (the transforms add terms before
// the products; F(4x4)'s entries reach 8 and 1/24), never more. Sizes cover 1x1 maps, sizes that
// leave partial tiles, channel counts off the 32-channel chunks, maps whose transformed input fits
// one block (its steps shared among the threads) and one beyond it (96 x 96 at 64 channels: blocks
// of tiles); the bits must not depend on the thread count.
TEST_CASE("conv2d: Winograd F(2x2) and F(4x4) agree with im2col + GEMM (forward, dX, dW), the same bits on 1 and 2 threads") {
    std::mt19937 rng(11);
    for (const int tile : {2, 4})
        for (const auto& shape : {std::array{3, 16, 1, 1, 1}, {5, 7, 2, 2, 2}, {37, 45, 2, 5, 3}, {64, 33, 1, 9, 11}, {16, 8, 3, 40, 38},
                                  {33, 70, 1, 1, 97}, {8, 8, 1, 6, 7}, {64, 64, 1, 96, 96}}) {
            const int in = shape[0], out = shape[1], n = shape[2], h = shape[3], w = shape[4];
            INFO("F(" << tile << "x" << tile << ") conv " << in << " -> " << out << " on " << n << " x " << h << " x " << w);
            conv2d<double> reference("c", {.in_channels = in, .out_channels = out}, {.max_tile = 0});
            randomize(reference, rng);
            conv2d<float> winograd("c", {.in_channels = in, .out_channels = out}, {.max_tile = tile, .min_tiles = 0});
            conv2d<float> im2col("c", {.in_channels = in, .out_channels = out}, {.max_tile = 0});
            for (auto* conv : {&winograd, &im2col}) {
                std::copy(reference.weight.value.begin(), reference.weight.value.end(), conv->weight.value.begin());
                std::copy(reference.bias.value.begin(), reference.bias.value.end(), conv->bias.value.begin());
            }
            const tensor<double> x = random_tensor(in, n, h, w, rng), dy = random_tensor(out, n, h, w, rng);
            for (auto* p : {&reference.weight, &reference.bias}) std::fill(p->grad.begin(), p->grad.end(), 0.0);
            const tensor<double> y_ref = reference.forward(x), dx_ref = reference.backward(dy);
            const tensor<float> xf = converted<float>(x), dyf = converted<float>(dy);

            set_threads(1);
            const conv_pass one = run_conv(winograd, xf, dyf);
            set_threads(2);
            const conv_pass wino = run_conv(winograd, xf, dyf), plain = run_conv(im2col, xf, dyf);
            CHECK(one.y.data == wino.y.data);
            CHECK(one.dx.data == wino.dx.data);
            CHECK(one.dw == wino.dw);

            // F(2x2): within 8x im2col's error; F(4x4): within 32x, bounded by 2e-5 of the largest value
            const double factor = tile == 2 ? 8 : 32, bound = tile == 2 ? 4e-6 : 2e-5;
            const auto compare = [&](const auto& w_out, const auto& i_out, const auto& ref, const char* what) {
                const std::pair<double, double> w_result = max_error(w_out, ref);
                const double w_err = w_result.first, scale = w_result.second, i_err = max_error(i_out, ref).first;
                INFO(what << ": Winograd error " << w_err << ", im2col error " << i_err << ", max |value| " << scale);
                CHECK(w_err <= bound * scale);
                CHECK(w_err <= factor * i_err + 1e-7 * scale);
            };
            compare(wino.y.data, plain.y.data, y_ref.data, "y");
            compare(wino.dx.data, plain.dx.data, dx_ref.data, "dx");
            compare(wino.dw, plain.dw, reference.weight.grad, "dw");
            compare(wino.db, plain.db, reference.bias.grad, "db");
        }
}

// A convolution keeps its transposed weights and Winograd filters between passes (forward after
// an adjoint backward, a second image) and recomputes them when the weights change, however they
// are written: each pass must give the bits of a fresh layer holding the same weights.
TEST_CASE("conv2d: kept weight forms give a fresh layer's bits before and after the weights change") {
    std::mt19937 rng(13);
    struct algorithm {
        const char* name;
        retinanet::model::conv_spec spec;
        winograd_options winograd;
        int size;
    };
    for (const algorithm& a :
         {algorithm{"1x1", {.in_channels = 6, .out_channels = 5, .kernel = 1}, {}, 9},
          algorithm{"3x3 stride 2, im2col", {.in_channels = 6, .out_channels = 5, .stride = 2}, {}, 9},
          algorithm{"F(2x2)", {.in_channels = 6, .out_channels = 5}, {.max_tile = 2}, 9},
          algorithm{"F(4x4) and, on the small map, F(2x2)", {.in_channels = 6, .out_channels = 5}, {.min_tiles = 20}, 19}}) {
        INFO(a.name);
        conv2d<float> kept("c", a.spec, a.winograd);
        const tensor<float> big = converted<float>(random_tensor(6, 2, a.size, a.size, rng));
        const tensor<float> small = converted<float>(random_tensor(6, 1, 5, 7, rng));
        std::normal_distribution<float> d(0.0f, 0.5f);
        for (auto* p : {&kept.weight, &kept.bias})
            for (auto& v : p->value) v = d(rng);
        // A fresh layer with kept's weights: forward and backward of x (dy = y), and inference.
        struct pass {
            tensor<float> y, dx, inferred;
        };
        const auto fresh_pass = [&](const tensor<float>& x) {
            conv2d<float> fresh("c", a.spec, a.winograd);
            fresh.weight.value = kept.weight.value;
            fresh.bias.value = kept.bias.value;
            pass r;
            r.y = fresh.forward(x);
            r.dx = fresh.backward(r.y);
            set_grad_enabled(false);
            r.inferred = fresh.forward(x);
            set_grad_enabled(true);
            return r;
        };
        for (int round = 0; round < 3; ++round) {
            INFO("round " << round);
            if (round == 1) kept.weight.value[7] += 0.25f;  // one element written in place
            if (round == 2) {                                // the whole vector replaced
                std::vector<float> replaced(kept.weight.size());
                for (auto& v : replaced) v = d(rng);
                kept.weight.value = replaced;
            }
            // As the heads run: forwards on several maps (F(4x4), F(2x2), F(4x4) again where both
            // apply), then the backwards in reverse order, then inference.
            const std::array<const tensor<float>*, 3> xs{&big, &small, &big};
            std::array<tensor<float>, 3> ys, dxs, inferred;
            for (std::size_t i = 0; i < 3; ++i) ys[i] = kept.forward(*xs[i]);
            for (std::size_t i = 3; i-- > 0;) dxs[i] = kept.backward(ys[i]);
            set_grad_enabled(false);
            for (std::size_t i = 0; i < 3; ++i) inferred[i] = kept.forward(*xs[i]);
            set_grad_enabled(true);
            for (std::size_t i = 0; i < 3; ++i) {
                INFO("map " << i);
                const pass expected = fresh_pass(*xs[i]);
                CHECK(ys[i].data == expected.y.data);
                CHECK(dxs[i].data == expected.dx.data);
                CHECK(inferred[i].data == expected.inferred.data);
            }
        }
    }
}

// Each algorithm's backward against finite differences, and the step down from F(4x4) to
// F(2x2) on small maps keeps forward and backward on the same algorithm.
TEST_CASE("conv2d: im2col, F(2x2) and F(4x4) gradients match finite differences; bad tiles are errors") {
    std::mt19937 rng(12);
    for (const int tile : {0, 2, 4})
        for (const int min_tiles : {0, 1000}) {
            INFO("tile " << tile << ", F(4x4) from " << min_tiles << " tiles");
            conv2d<double> conv("c", {.in_channels = 6, .out_channels = 5}, {.max_tile = tile, .min_tiles = min_tiles});
            randomize(conv, rng);
            check_gradients(conv, random_tensor(6, 2, 7, 9, rng), rng);
        }
    CHECK_THROWS_WITH_AS(conv2d<float>("head.conv", {.in_channels = 4, .out_channels = 8}, {.max_tile = 3}),
                         doctest::Contains("head.conv Winograd tile must be 0 (off), 2 or 4, got 3"), focal::error);
}

TEST_CASE("group_norm: normalized output and gradients") {
    std::mt19937 rng(3);
    group_norm<double> gn("gn", 6, 3);
    randomize(gn, rng);
    const auto x = random_tensor(6, 2, 4, 5, rng, 3.0);
    set_grad_enabled(false);
    const auto y = gn.forward(x);
    set_grad_enabled(true);
    // Undo the affine part: every (image, group) is then mean 0, variance var/(var + eps).
    for (int n = 0; n < 2; ++n)
        for (int g = 0; g < 3; ++g) {
            double sum = 0, sq = 0, xs = 0, xsq = 0;
            for (int c = 2 * g; c < 2 * g + 2; ++c)
                for (int yy = 0; yy < 4; ++yy)
                    for (int xx = 0; xx < 5; ++xx) {
                        const double v = (y.at(c, n, yy, xx) - gn.bias.value[c]) / gn.weight.value[c];
                        sum += v, sq += v * v;
                        xs += x.at(c, n, yy, xx);
                        xsq += x.at(c, n, yy, xx) * x.at(c, n, yy, xx);
                    }
            const double var = xsq / 40 - (xs / 40) * (xs / 40);
            CHECK(sum / 40 == doctest::Approx(0.0).epsilon(1e-12).scale(1));
            CHECK(sq / 40 == doctest::Approx(var / (var + 1e-5)).epsilon(1e-10));
        }
    check_gradients(gn, x, rng);
    CHECK_THROWS_AS(group_norm<double>("bad", 6, 4), focal::error);
}

TEST_CASE("frozen_batch_norm applies torchvision's scale and shift and passes gradients") {
    std::mt19937 rng(4);
    frozen_batch_norm<double> bn("bn", 3);
    randomize(bn, rng);
    for (auto& v : bn.running_var.value) v = std::abs(v) + 0.1;
    const auto x = random_tensor(3, 2, 3, 3, rng);
    set_grad_enabled(false);
    const auto y = bn.forward(x);
    set_grad_enabled(true);
    for (int c = 0; c < 3; ++c) {
        const double scale = bn.weight.value[c] / std::sqrt(bn.running_var.value[c] + 1e-5);
        CHECK(y.at(c, 1, 2, 0) == doctest::Approx(x.at(c, 1, 2, 0) * scale + bn.bias.value[c] - bn.running_mean.value[c] * scale));
    }
    check_gradients(bn, x, rng);
}

// A ReLU fused into the pass before it (normalization, residual sum) must give the bits of the
// separate layers: values, NaN propagation and the backward mask (0 at 0 and at NaN). The maps
// span several element-wise ranges and normalization chunks; 1 and 2 threads.
TEST_CASE("ReLU fused into group_norm, frozen_batch_norm and the residual sum: the separate layers' bits, forward and backward") {
    std::mt19937 rng(14);
    const auto with_specials = [&](int c, int n, int h, int w) {
        tensor<float> t = converted<float>(random_tensor(c, n, h, w, rng));
        t.data[5] = std::numeric_limits<float>::quiet_NaN();
        t.data[t.size() / 2] = 0.0f;
        t.data[t.size() - 3] = -std::numeric_limits<float>::infinity();
        return t;
    };
    const auto same_bits = [](const tensor<float>& a, const tensor<float>& b) {
        return a.same_shape(b) && std::memcmp(a.data.data(), b.data.data(), a.size() * sizeof(float)) == 0;
    };
    // forward and backward of `fused` against `unfused` then a relu layer
    const auto compare = [&](layer<float>& fused, layer<float>& unfused, const tensor<float>& x) {
        relu<float> r;
        const tensor<float> y = fused.forward(x), y_ref = r.forward(unfused.forward(x));
        CHECK(same_bits(y, y_ref));
        tensor<float> dy = converted<float>(random_tensor(y.c, y.n, y.h, y.w, rng));
        CHECK(same_bits(fused.backward(dy), unfused.backward(r.backward(dy))));
    };
    for (const int threads : {1, 2}) {
        INFO(threads << " threads");
        set_threads(threads);
        {
            group_norm<float> fused("gn", 32, 8, activation::relu), unfused("gn", 32, 8);
            for (auto* p : {&fused.weight, &fused.bias}) p->value.assign(p->value.size(), 0.0f);
            for (std::size_t k = 0; k < 32; ++k) {
                fused.weight.value[k] = 0.5f + 0.1f * static_cast<float>(k);
                fused.bias.value[k] = 0.05f * (static_cast<float>(k) - 16);
            }
            unfused.weight.value = fused.weight.value, unfused.bias.value = fused.bias.value;
            compare(fused, unfused, converted<float>(random_tensor(32, 2, 70, 40, rng)));  // 2,800 pixels: 1 chunk per image
            compare(fused, unfused, converted<float>(random_tensor(32, 1, 90, 100, rng)));  // 9,000 pixels: 3 chunks
        }
        {
            frozen_batch_norm<float> fused("bn", 32, activation::relu), unfused("bn", 32);
            for (std::size_t k = 0; k < 32; ++k) {
                const float s = static_cast<float>(k) - 16;
                fused.weight.value[k] = unfused.weight.value[k] = 1 + 0.1f * s;
                fused.bias.value[k] = unfused.bias.value[k] = 0.05f * s;
                fused.running_mean.value[k] = unfused.running_mean.value[k] = 0.01f * s;
                fused.running_var.value[k] = unfused.running_var.value[k] = 1 + 0.02f * s;
            }
            compare(fused, unfused, with_specials(32, 2, 40, 30));
        }
        {
            const tensor<float> a = with_specials(32, 2, 40, 30), b = with_specials(32, 2, 40, 30);  // 76,800 values: 2 ranges
            relu<float> fused, unfused;
            tensor<float> sum = a;
            add_in_place(sum, b);
            CHECK(same_bits(fused.forward_sum(a, b), unfused.forward(sum)));
            const tensor<float> dy = converted<float>(random_tensor(32, 2, 40, 30, rng));
            CHECK(same_bits(fused.backward(dy), unfused.backward(dy)));
            CHECK_THROWS_WITH_AS(fused.forward_sum(a, with_specials(32, 2, 40, 31)), doctest::Contains("relu::forward_sum"), focal::error);
        }
    }
    set_threads(2);
    std::mt19937 drng(15);
    group_norm<double> gn("gn", 6, 3, activation::relu);
    randomize(gn, drng);
    check_gradients(gn, random_tensor(6, 2, 4, 5, drng, 3.0), drng);
    frozen_batch_norm<double> bn("bn", 3, activation::relu);
    randomize(bn, drng);
    for (auto& v : bn.running_var.value) v = std::abs(v) + 0.1;
    check_gradients(bn, random_tensor(3, 2, 3, 3, drng), drng);
}

TEST_CASE("relu, max_pool2d and upsample_nearest: values and gradients") {
    std::mt19937 rng(5);
    relu<double> r;
    check_gradients(r, random_tensor(2, 2, 5, 5, rng), rng);

    max_pool2d<double> pool;  // 3x3, stride 2, padding 1
    auto x = random_tensor(2, 2, 7, 6, rng);
    set_grad_enabled(false);
    const auto y = pool.forward(x);
    set_grad_enabled(true);
    REQUIRE(y.h == 4);
    REQUIRE(y.w == 3);
    CHECK(y.at(1, 1, 0, 0) == std::max({x.at(1, 1, 0, 0), x.at(1, 1, 0, 1), x.at(1, 1, 1, 0), x.at(1, 1, 1, 1)}));
    check_gradients(pool, x, rng);

    upsample_nearest<double> up;
    up.set_output_size(6, 8);
    x = random_tensor(2, 2, 3, 4, rng);
    set_grad_enabled(false);
    const auto u = up.forward(x);
    set_grad_enabled(true);
    CHECK(u.at(1, 0, 5, 7) == x.at(1, 0, 2, 3));
    CHECK(u.at(1, 0, 2, 1) == x.at(1, 0, 1, 0));
    check_gradients(up, x, rng);
    up.set_output_size(5, 7);  // a non-integer ratio: torch's floor(dst * in / out)
    check_gradients(up, random_tensor(1, 1, 3, 4, rng), rng);
}

TEST_CASE("group_norm on maps of several pixel chunks: against a direct evaluation, the same bits on 1 and 2 threads") {
    // 75 x 70 = 5250 pixels: two chunks of the forward's per-chunk statistics.
    std::mt19937 rng(3);
    std::normal_distribution<float> d(0.5f, 2.0f);
    tensor<float> x(8, 2, 75, 70);
    for (auto& v : x.data) v = d(rng);
    group_norm<float> gn("gn", 8, 2);
    for (int k = 0; k < 8; ++k) gn.weight.value[k] = 1.0f + 0.1f * k, gn.bias.value[k] = -0.2f * k;
    set_grad_enabled(false);
    set_threads(1);
    const auto y1 = gn.forward(x);
    set_threads(2);
    const auto y2 = gn.forward(x);
    set_grad_enabled(true);
    CHECK(y1.data == y2.data);
    double worst = 0;
    for (int n = 0; n < 2; ++n)
        for (int g = 0; g < 2; ++g) {
            double sum = 0, sq = 0, count = 0;
            for (int k = 4 * g; k < 4 * g + 4; ++k)
                for (int yy = 0; yy < x.h; ++yy)
                    for (int xx = 0; xx < x.w; ++xx) sum += x.at(k, n, yy, xx), ++count;
            const double mean = sum / count;
            for (int k = 4 * g; k < 4 * g + 4; ++k)
                for (int yy = 0; yy < x.h; ++yy)
                    for (int xx = 0; xx < x.w; ++xx) sq += (x.at(k, n, yy, xx) - mean) * (x.at(k, n, yy, xx) - mean);
            const double inv_std = 1.0 / std::sqrt(sq / count + 1e-5);
            for (int k = 4 * g; k < 4 * g + 4; ++k)
                for (int yy = 0; yy < x.h; ++yy)
                    for (int xx = 0; xx < x.w; ++xx) {
                        const double expected = (x.at(k, n, yy, xx) - mean) * inv_std * gn.weight.value[k] + gn.bias.value[k];
                        worst = std::max(worst, std::abs(y1.at(k, n, yy, xx) - expected));
                    }
        }
    CHECK(worst < 1e-5);
}

TEST_CASE("max_pool2d: every output and the gradient's route against a direct evaluation (ties, NaN, padding)") {
    // Values on a coarse grid (many ties) and a few NaN; 5 channels (not a SIMD width).
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> level(0, 3);
    tensor<float> x(5, 2, 7, 6);
    for (auto& v : x.data) v = static_cast<float>(level(rng));
    x.at(2, 0, 3, 3) = std::numeric_limits<float>::quiet_NaN();
    x.at(2, 0, 3, 4) = std::numeric_limits<float>::quiet_NaN();
    x.at(4, 1, 0, 0) = std::numeric_limits<float>::quiet_NaN();
    max_pool2d<float> pool;  // 3x3, stride 2, padding 1
    const auto y = pool.forward(x);
    tensor<float> dy(y.c, y.n, y.h, y.w);
    for (auto& v : dy.data) v = 1.0f;
    const auto dx = pool.backward(dy);
    // Reference: taps in row-major order; the first NaN, else the first maximum, wins.
    tensor<float> expected_dx(x.c, x.n, x.h, x.w);
    int mismatches = 0;
    for (int n = 0; n < y.n; ++n)
        for (int oy = 0; oy < y.h; ++oy)
            for (int ox = 0; ox < y.w; ++ox)
                for (int c = 0; c < y.c; ++c) {
                    float best = 0;
                    int by = -1, bx = -1;
                    for (int i = 0; i < 3; ++i)
                        for (int j = 0; j < 3; ++j) {
                            const int iy = oy * 2 - 1 + i, ix = ox * 2 - 1 + j;
                            if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                            const float v = x.at(c, n, iy, ix);
                            const bool best_nan = by >= 0 && best != best;
                            if (!best_nan && (by < 0 || v > best || v != v)) best = v, by = iy, bx = ix;
                        }
                    const float got = y.at(c, n, oy, ox);
                    mismatches += !(got == best || (got != got && best != best));
                    expected_dx.at(c, n, by, bx) += 1.0f;
                }
    CHECK(mismatches == 0);
    CHECK(std::isnan(y.at(2, 0, 1, 1)));  // the windows over the NaN pixels
    CHECK(std::isnan(y.at(2, 0, 2, 2)));
    CHECK(dx.data == expected_dx.data);
}

TEST_CASE("layers reject wrong inputs with focal::error") {
    conv2d<float> conv("head.conv", {.in_channels = 4, .out_channels = 8});
    tensor<float> x(3, 1, 8, 8);
    CHECK_THROWS_WITH_AS(conv.forward(x), doctest::Contains("head.conv input channels"), focal::error);
    CHECK_THROWS_AS(conv.backward(tensor<float>(8, 1, 8, 8)), focal::error);  // no forward state
    tensor<float> a(1, 1, 2, 2), b(1, 1, 2, 3);
    CHECK_THROWS_AS(add_in_place(a, b), focal::error);
    relu<float> r;
    tensor<float> moved_from = a, kept = std::move(moved_from);  // same shape fields, no data
    CHECK_THROWS_WITH_AS(r.forward_sum(kept, moved_from), doctest::Contains("relu::forward_sum"), focal::error);
    conv.weight.value.resize(10);
    CHECK_THROWS_WITH_AS(conv.forward(tensor<float>(4, 1, 8, 8)), doctest::Contains("head.conv.weight size must be 288 (out x in x k x k), got 10"),
                         focal::error);
}

TEST_CASE("parallel_tasks runs every task once on 1 and 2 threads and rethrows a task's exception") {
    for (int t : {1, 2}) {
        set_threads(t);
        std::vector<int> hits(1000, 0);
        parallel_tasks(hits.size(), [&](std::size_t i) { ++hits[i]; });
        CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
        CHECK_THROWS_WITH_AS(parallel_tasks(64, [](std::size_t i) {
                                 if (i == 17) focal::detail::fail("task", "i", "not 17", i);
                             }),
                             doctest::Contains("task: i must be not 17"), focal::error);
        int after = 0;
        parallel_tasks(1, [&](std::size_t) { ++after; });  // still usable
        CHECK(after == 1);
    }
    set_threads(2);
}
