// tests/cuda/harness.cuh: a small test harness for the CUDA tests.
//
// The GPU machines that run these tests have nvcc and CMake but none of the Debian -dev packages
// (doctest included), so the CUDA tests carry their own ~100 lines instead:
//   FOCAL_CUDA_TEST(name) { ... }        registers a test (run by tests/cuda/main.cu)
//   CHECK(cond), CHECK_EQ(a, b)          record a failure and go on
//   REQUIRE(cond)                        record a failure and leave the test
//   CHECK_THROWS_AS(expr, type)
//   check_close(actual, expected, rel, abs, what)   element-wise, reports the worst element
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <focal/cuda/view.cuh>

namespace focal_test {

struct test_case {
    const char* name;
    void (*run)();
};
inline std::vector<test_case>& registry() {
    static std::vector<test_case> tests;
    return tests;
}
struct registrar {
    registrar(const char* name, void (*run)()) { registry().push_back({name, run}); }
};

struct require_failed {};

inline int& failures() {
    static int n = 0;
    return n;
}
inline void fail(const char* file, int line, const std::string& message) {
    ++failures();
    std::printf("    FAILED %s:%d: %s\n", file, line, message.c_str());
}

template <class T>
std::string show(const T& v) {
    std::ostringstream s;
    s.precision(9);
    if constexpr (std::is_integral_v<T> && sizeof(T) == 1) s << static_cast<int>(v);
    else s << v;
    return s.str();
}

// |actual - expected| <= abs + rel * |expected| for every element (NaN equals NaN, inf equals the
// same inf); reports how many differ and the worst one.
template <class T, class U>
bool check_close(const std::vector<T>& actual, const std::vector<U>& expected, double rel, double abs,
                 const std::string& what, const char* file, int line) {
    if (actual.size() != expected.size()) {
        fail(file, line, what + ": size " + std::to_string(actual.size()) + " != expected " + std::to_string(expected.size()));
        return false;
    }
    std::size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
        if (std::isnan(a) && std::isnan(e)) continue;
        if (std::isinf(e) && a == e) continue;
        const double err = std::fabs(a - e), tol = abs + rel * std::fabs(e);
        if (!(err <= tol)) {
            ++bad;
            const double excess = std::isnan(err) ? 1e300 : err - tol;
            if (excess > worst_excess) {
                worst_excess = excess;
                worst = i;
            }
        }
    }
    if (bad)
        fail(file, line, what + ": " + std::to_string(bad) + " of " + std::to_string(actual.size()) +
                             " elements differ; worst at " + std::to_string(worst) + ": " + show(actual[worst]) +
                             " vs expected " + show(expected[worst]));
    return bad == 0;
}

// Random inputs, reproducible from the seed.
inline std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

}  // namespace focal_test

#define FOCAL_CUDA_TEST(name)                                                        \
    static void name();                                                              \
    static const ::focal_test::registrar focal_test_registrar_##name(#name, &name); \
    static void name()

#define CHECK(cond) \
    ((cond) ? (void)0 : ::focal_test::fail(__FILE__, __LINE__, "CHECK(" #cond ")"))
#define CHECK_EQ(a, b)                                                                                 \
    do {                                                                                               \
        const auto& focal_a_ = (a);                                                                    \
        const auto& focal_b_ = (b);                                                                    \
        if (!(focal_a_ == focal_b_))                                                                   \
            ::focal_test::fail(__FILE__, __LINE__, "CHECK_EQ(" #a ", " #b "): " +                      \
                                                       ::focal_test::show(focal_a_) + " != " +         \
                                                       ::focal_test::show(focal_b_));                  \
    } while (0)
#define REQUIRE(cond)                                                           \
    do {                                                                        \
        if (!(cond)) {                                                          \
            ::focal_test::fail(__FILE__, __LINE__, "REQUIRE(" #cond ")");       \
            throw ::focal_test::require_failed{};                               \
        }                                                                       \
    } while (0)
#define CHECK_THROWS_AS(expr, type)                                                                      \
    do {                                                                                                 \
        bool focal_threw_ = false;                                                                       \
        try {                                                                                            \
            (void)(expr);                                                                                \
        } catch (const type&) {                                                                          \
            focal_threw_ = true;                                                                         \
        } catch (...) {                                                                                  \
        }                                                                                                \
        if (!focal_threw_) ::focal_test::fail(__FILE__, __LINE__, "CHECK_THROWS_AS(" #expr ", " #type ")"); \
    } while (0)
#define CHECK_CLOSE(actual, expected, rel, abs) \
    ::focal_test::check_close((actual), (expected), (rel), (abs), #actual, __FILE__, __LINE__)
