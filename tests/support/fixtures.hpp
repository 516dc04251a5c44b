// Test support: reference fixtures (numpy .npy + manifest.json) and numeric comparisons.
//
// Fixture sets live in tests/data/<set>/ with a manifest.json listing every case. The environment
// variable FOCAL_FIXTURES names another directory of the same layout to test against instead
// (for the torchvision set), e.g. a larger reference set regenerated with tools/make_fixtures.py.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

namespace focal_test {

inline std::filesystem::path data_dir() { return FOCAL_TEST_DATA_DIR; }

// The torchvision fixture directory: $FOCAL_FIXTURES if set, else tests/data/torchvision.
inline std::filesystem::path torchvision_fixtures() {
    if (const char* env = std::getenv("FOCAL_FIXTURES"); env && *env) return env;
    return data_dir() / "torchvision";
}

struct fixture_set {
    std::filesystem::path dir;
    nlohmann::json manifest;

    explicit fixture_set(std::filesystem::path d) : dir(std::move(d)) {
        std::ifstream in(dir / "manifest.json");
        REQUIRE_MESSAGE(in.good(), "cannot open " << (dir / "manifest.json").string());
        manifest = nlohmann::json::parse(in);
    }
    // Names of the cases whose name starts with `family` + "_", in manifest order.
    std::vector<std::string> cases(const std::string& family) const {
        std::vector<std::string> out;
        for (auto& [name, _] : manifest.at("cases").items())
            if (name.rfind(family + "_", 0) == 0) out.push_back(name);
        return out;
    }
    const nlohmann::json& params(const std::string& c) const { return manifest.at("cases").at(c).at("params"); }
    template <class T>
    xt::xarray<T> array(const std::string& c, const std::string& name) const {
        return xt::load_npy<T>((dir / c / (name + ".npy")).string());
    }
};

// |a - b| <= rel * |b| + abs_floor. NaN equals NaN.
inline bool close(double a, double b, double rel, double abs_floor = 0.0) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::abs(a - b) <= rel * std::abs(b) + abs_floor;
}

// Distance in units in the last place between two floats of the same sign.
inline long long ulp_distance(float a, float b) {
    auto key = [](float f) {
        std::int32_t i;
        std::memcpy(&i, &f, sizeof i);
        return i < 0 ? static_cast<long long>(INT32_MIN) - i : static_cast<long long>(i);
    };
    return std::llabs(key(a) - key(b));
}

}  // namespace focal_test
