// npz archives (examples/retinanet/io): round trips of every dtype and shape, files written by
// numpy (np.savez, np.savez_compressed, data descriptors, .npy 2.0/3.0), numpy reading ours, every
// corruption we can think of (each truncation, each flipped byte) giving focal::error, and atomic
// writes that leave the previous file untouched on failure.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <focal/core/error.hpp>

#include "io/npz.hpp"
#include "support/fixtures.hpp"

using namespace retinanet::io;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test case, removed with everything in it afterwards.
struct scratch_dir {
    fs::path path;
    scratch_dir() {
        static std::atomic<int> counter{0};
        path = fs::temp_directory_path() /
               ("focal_test_npz_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

std::string read_bytes(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open " << file.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_bytes(const fs::path& file, const std::string& bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

// The message of the focal::error that f throws ("" and a failed check when none is thrown).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const focal::error& e) {
        return e.what();
    }
    FAIL_CHECK("expected a focal::error");
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same(const npz_archive& a, const npz_archive& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, x] : a) {
        auto it = b.find(key);
        if (it == b.end() || it->second.shape != x.shape || it->second.type() != x.type()) return false;
        const bool equal = std::visit(
            [&](const auto& v) { return same_bits(v, std::get<std::decay_t<decltype(v)>>(it->second.values)); },
            x.values);
        if (!equal) return false;
    }
    return true;
}

// --- a minimal stored-zip writer, to craft archives that write_npz refuses to make ------------

std::uint32_t crc32(const std::string& bytes) {
    std::uint32_t c = 0xffffffffu;
    for (unsigned char b : bytes) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

template <class T>
void put(std::string& out, T v) {
    char b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    out.append(b, sizeof v);
}

std::string local_header(const std::string& name, const std::string& data, std::uint16_t flags, std::uint16_t method) {
    std::string h;
    put<std::uint32_t>(h, 0x04034b50);
    put<std::uint16_t>(h, 20);
    put<std::uint16_t>(h, flags);
    put<std::uint16_t>(h, method);
    put<std::uint32_t>(h, 0);
    put<std::uint32_t>(h, crc32(data));
    put<std::uint32_t>(h, static_cast<std::uint32_t>(data.size()));
    put<std::uint32_t>(h, static_cast<std::uint32_t>(data.size()));
    put<std::uint16_t>(h, static_cast<std::uint16_t>(name.size()));
    put<std::uint16_t>(h, 0);
    return h + name;
}

struct raw_member {
    std::string name;
    std::string data;
    std::uint16_t flags = 0;
    std::uint16_t method = 0;
};

// With zip64, the central directory saturates sizes and offsets and keeps the real values in
// zip64 extra fields, and a zip64 end record with its locator precedes the classic one: the
// layout of archives over 4 GiB, which numpy's files of test size never reach.
std::string make_zip(const std::vector<raw_member>& members, bool zip64 = false) {
    std::string out, central;
    for (const auto& m : members) {
        const auto offset = static_cast<std::uint32_t>(out.size());
        const auto size = static_cast<std::uint32_t>(m.data.size());
        out += local_header(m.name, m.data, m.flags, m.method) + m.data;
        put<std::uint32_t>(central, 0x02014b50);
        put<std::uint16_t>(central, zip64 ? 45 : 20);
        put<std::uint16_t>(central, zip64 ? 45 : 20);
        put<std::uint16_t>(central, m.flags);
        put<std::uint16_t>(central, m.method);
        put<std::uint32_t>(central, 0);  // time, date
        put<std::uint32_t>(central, crc32(m.data));
        put<std::uint32_t>(central, zip64 ? 0xffffffffu : size);
        put<std::uint32_t>(central, zip64 ? 0xffffffffu : size);
        put<std::uint16_t>(central, static_cast<std::uint16_t>(m.name.size()));
        put<std::uint16_t>(central, zip64 ? 28 : 0);  // extra
        put<std::uint16_t>(central, 0);               // comment
        put<std::uint16_t>(central, 0);               // disk
        put<std::uint16_t>(central, 0);               // internal
        put<std::uint32_t>(central, 0);               // external
        put<std::uint32_t>(central, zip64 ? 0xffffffffu : offset);
        central += m.name;
        if (zip64) {
            put<std::uint16_t>(central, 0x0001);
            put<std::uint16_t>(central, 24);
            put<std::uint64_t>(central, size);  // uncompressed, compressed, offset: in this order
            put<std::uint64_t>(central, size);
            put<std::uint64_t>(central, offset);
        }
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += central;
    if (zip64) {
        const auto record = static_cast<std::uint64_t>(out.size());
        put<std::uint32_t>(out, 0x06064b50);
        put<std::uint64_t>(out, 44);  // size of the rest of the record
        put<std::uint16_t>(out, 45);
        put<std::uint16_t>(out, 45);
        put<std::uint32_t>(out, 0);
        put<std::uint32_t>(out, 0);
        put<std::uint64_t>(out, members.size());
        put<std::uint64_t>(out, members.size());
        put<std::uint64_t>(out, central.size());
        put<std::uint64_t>(out, cd_offset);
        put<std::uint32_t>(out, 0x07064b50);
        put<std::uint32_t>(out, 0);
        put<std::uint64_t>(out, record);
        put<std::uint32_t>(out, 1);
    }
    put<std::uint32_t>(out, 0x06054b50);
    put<std::uint16_t>(out, 0);
    put<std::uint16_t>(out, 0);
    put<std::uint16_t>(out, zip64 ? 0xffff : static_cast<std::uint16_t>(members.size()));
    put<std::uint16_t>(out, zip64 ? 0xffff : static_cast<std::uint16_t>(members.size()));
    put<std::uint32_t>(out, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(central.size()));
    put<std::uint32_t>(out, zip64 ? 0xffffffffu : cd_offset);
    put<std::uint16_t>(out, 0);
    return out;
}

// A .npy of version major.0 with `dict` as its header and `data_bytes` zero bytes of data.
std::string npy(const std::string& dict, std::size_t data_bytes, int major = 1) {
    std::string h = dict + "\n";
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    if (major == 1) put<std::uint16_t>(out, static_cast<std::uint16_t>(h.size()));
    else put<std::uint32_t>(out, static_cast<std::uint32_t>(h.size()));
    return out + h + std::string(data_bytes, '\0');
}

std::string npy_f4(const std::string& shape, std::size_t data_bytes) {
    return npy("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }", data_bytes);
}

// The error read_npz gives for an archive of these members.
std::string read_error(const std::vector<raw_member>& members) {
    scratch_dir dir;
    write_bytes(dir.path / "crafted.npz", make_zip(members));
    return error_of([&] { read_npz(dir.path / "crafted.npz"); });
}

npz_archive sample_archive() {
    npz_archive a;
    a["conv.weight"] = {{2, 3, 1, 1}, std::vector<float>{1.5f, -2.0f, 0.0f, -0.0f, 1e-40f, 3.25f}};
    a["special"] = {{4},
                    std::vector<float>{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                       std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max()}};
    a["f64"] = {{2, 2}, std::vector<double>{0.1, -1e300, 5e-324, 42.0}};
    a["i64"] = {{3}, std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -1,
                                               std::numeric_limits<std::int64_t>::max()}};
    a["scalar_f32"] = {{}, std::vector<float>{0.75f}};
    a["scalar_f64"] = {{}, std::vector<double>{-2.5}};
    a["step"] = {{}, std::vector<std::int64_t>{123456789012345}};
    a["empty_f32"] = {{0}, std::vector<float>{}};
    a["empty_f64"] = {{3, 0}, std::vector<double>{}};
    a["empty_i64"] = {{0, 0, 2}, std::vector<std::int64_t>{}};
    a["optimizer/momentum.backbone.body.layer1.0.conv1.weight"] = {{1, 1, 1, 1, 1, 1, 2}, std::vector<float>{7, 8}};
    return a;
}

}  // namespace

TEST_CASE("npz: every dtype and shape round-trips bit for bit, deterministically") {
    scratch_dir dir;
    const npz_archive a = sample_archive();
    write_npz(dir.path / "a.npz", a);
    write_npz(dir.path / "b.npz", a);
    const npz_archive back = read_npz(dir.path / "a.npz");
    CHECK(same(a, back));
    CHECK(back.at("scalar_f32").shape.empty());
    CHECK(back.at("scalar_f32").size() == 1);
    CHECK(back.at("empty_f64").shape == std::vector<std::size_t>{3, 0});
    CHECK(back.at("step").type() == dtype::int64);
    CHECK(read_bytes(dir.path / "a.npz") == read_bytes(dir.path / "b.npz"));
    CHECK(dir.entries() == std::vector<std::string>{"a.npz", "b.npz"});  // no temporary left

    write_npz(dir.path / "none.npz", {});  // an empty archive is a valid zip
    CHECK(read_npz(dir.path / "none.npz").empty());

    // Overwriting replaces the contents.
    npz_archive small;
    small["x"] = {{1}, std::vector<float>{3}};
    write_npz(dir.path / "a.npz", small);
    CHECK(same(read_npz(dir.path / "a.npz"), small));
}

TEST_CASE("npz: reads np.savez and np.savez_compressed (tests/data/npz/make_npz.py)") {
    for (const char* name : {"stored.npz", "compressed.npz"}) {
        CAPTURE(name);
        const npz_archive a = read_npz(focal_test::data_dir() / "npz" / name);
        CHECK(a.size() == 14);

        const auto& f32 = a.at("f32");
        CHECK(f32.shape == std::vector<std::size_t>{2, 3});
        REQUIRE(f32.as_float32("f32").size() == 6);
        for (std::size_t i = 0; i < 6; ++i) CHECK(f32.as_float32()[i] == 0.5f * static_cast<float>(i));
        const auto& f64 = a.at("f64");
        CHECK(f64.shape == std::vector<std::size_t>{2, 3, 4});
        REQUIRE(f64.as_float64().size() == 24);
        for (std::size_t i = 0; i < 24; ++i) CHECK(f64.as_float64()[i] == static_cast<double>(i) / 8 - 1);
        const auto& dots = a.at("nested/name.with.dots");
        CHECK(dots.shape == std::vector<std::size_t>{2});
        CHECK(dots.as_float32() == std::vector<float>{0, 1});

        // Every integer and bool dtype arrives as int64.
        auto ints = [&](const char* key, std::size_t n, auto formula) {
            CAPTURE(key);
            const auto& arr = a.at(key);
            CHECK(arr.shape == std::vector<std::size_t>{n});
            const auto& v = arr.as_int64(key);
            REQUIRE(v.size() == n);
            for (std::size_t i = 0; i < n; ++i) CHECK(v[i] == formula(static_cast<std::int64_t>(i)));
        };
        ints("i8", 5, [](std::int64_t i) { return (std::int64_t{1} << 40) - 3 * i; });
        ints("i4", 4, [](std::int64_t i) { return i - 2; });
        ints("i2", 3, [](std::int64_t i) { return i - 1000; });
        ints("i1", 3, [](std::int64_t i) { return i - 128; });
        ints("u4", 3, [](std::int64_t i) { return i + 4000000000; });
        ints("u2", 3, [](std::int64_t i) { return i + 65000; });
        ints("u1", 3, [](std::int64_t i) { return i + 250; });
        ints("b1", 4, [](std::int64_t i) { return std::int64_t{i % 2 == 0}; });

        CHECK(a.at("scalar").shape.empty());
        CHECK(a.at("scalar").as_float32() == std::vector<float>{1.25f});
        CHECK(a.at("step").shape.empty());
        CHECK(a.at("step").as_int64() == std::vector<std::int64_t>{7});
        CHECK(a.at("empty").shape == std::vector<std::size_t>{0, 3});
        CHECK(a.at("empty").as_float32().empty());
    }
}

TEST_CASE("npz: reads data descriptors and .npy versions 1.0, 2.0 and 3.0") {
    const npz_archive a = read_npz(focal_test::data_dir() / "npz" / "streamed.npz");
    CHECK(a.size() == 3);
    int k = 1;
    for (const char* key : {"v1", "v2", "v3"}) {
        CAPTURE(key);
        CHECK(a.at(key).shape == std::vector<std::size_t>{3, 2});
        const auto& v = a.at(key).as_float32(key);
        REQUIRE(v.size() == 6);
        for (std::size_t i = 0; i < 6; ++i) CHECK(v[i] == static_cast<float>(i) + 10.0f * static_cast<float>(k));
        ++k;
    }
}

TEST_CASE("npz: numpy reads what write_npz writes") {
    // Only where numpy is installed (it is a development tool, not a build dependency).
    if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        MESSAGE("numpy not available: skipped");
        return;
    }
    scratch_dir dir;
    write_npz(dir.path / "ours.npz", sample_archive());
    const std::string script =
        "import numpy as np, sys\n"
        "z = np.load(sys.argv[1])\n"
        "assert sorted(z.files) == sorted(['conv.weight', 'special', 'f64', 'i64', 'scalar_f32', 'scalar_f64',"
        " 'step', 'empty_f32', 'empty_f64', 'empty_i64',"
        " 'optimizer/momentum.backbone.body.layer1.0.conv1.weight']), z.files\n"
        "w = z['conv.weight']\n"
        "assert w.dtype == np.float32 and w.shape == (2, 3, 1, 1) and w.ravel()[1] == -2 and w.ravel()[5] == 3.25\n"
        "s = z['special']\n"
        "assert np.isposinf(s[0]) and np.isneginf(s[1]) and np.isnan(s[2])\n"
        "assert z['f64'].dtype == np.float64 and z['f64'][0, 0] == 0.1 and z['f64'][1, 0] == 5e-324\n"
        "assert z['i64'].dtype == np.int64 and z['i64'][0] == -2**63 and z['i64'][2] == 2**63 - 1\n"
        "assert z['scalar_f32'].shape == () and z['scalar_f32'] == 0.75 and z['scalar_f64'] == -2.5\n"
        "assert z['step'].shape == () and z['step'] == 123456789012345\n"
        "assert z['empty_f64'].shape == (3, 0) and z['empty_i64'].shape == (0, 0, 2)\n"
        "assert list(z['optimizer/momentum.backbone.body.layer1.0.conv1.weight'].ravel()) == [7, 8]\n";
    write_bytes(dir.path / "check.py", script);
    const std::string command =
        "/usr/bin/python3 '" + (dir.path / "check.py").string() + "' '" + (dir.path / "ours.npz").string() + "'";
    CHECK(std::system(command.c_str()) == 0);
}

TEST_CASE("npz: a missing file, a directory and a non-zip are clear errors") {
    scratch_dir dir;
    const std::string missing = error_of([&] { read_npz(dir.path / "missing.npz"); });
    CHECK(contains(missing, "read_npz: '"));
    CHECK(contains(missing, "missing.npz' does not exist"));
    CHECK(contains(error_of([&] { read_npz(dir.path); }), "is not a regular file"));

    write_bytes(dir.path / "ckpt.npz", "this is a text file, not a zip archive\n");
    const std::string text = error_of([&] { read_npz(dir.path / "ckpt.npz"); });
    CHECK(contains(text, "ckpt.npz' is not a zip archive (no end-of-central-directory record"));
    write_bytes(dir.path / "empty.npz", "");
    CHECK(contains(error_of([&] { read_npz(dir.path / "empty.npz"); }), "is not a zip archive"));
}

TEST_CASE("npz: every truncation of a numpy file is a focal::error") {
    scratch_dir dir;
    for (const char* name : {"stored.npz", "compressed.npz", "streamed.npz"}) {
        CAPTURE(name);
        const std::string bytes = read_bytes(focal_test::data_dir() / "npz" / name);
        for (std::size_t n = 0; n < bytes.size(); ++n) {
            CAPTURE(n);
            write_bytes(dir.path / "cut.npz", bytes.substr(0, n));
            CHECK_THROWS_AS(read_npz(dir.path / "cut.npz"), focal::error);
        }
    }
}

TEST_CASE("npz: a flipped byte is caught by the CRC, and no flip anywhere gets past validation") {
    scratch_dir dir;
    // A flipped data byte: only the CRC can tell.
    npz_archive a;
    a["w"] = {{4}, std::vector<float>{1, 2, 3, 4}};
    write_npz(dir.path / "a.npz", a);
    std::string bytes = read_bytes(dir.path / "a.npz");
    const std::size_t data = bytes.find("\n") + 1 + 5;  // inside the floats after the .npy header
    bytes[data] = static_cast<char>(bytes[data] ^ 0x01);
    write_bytes(dir.path / "a.npz", bytes);
    const std::string crc = error_of([&] { read_npz(dir.path / "a.npz"); });
    CHECK(contains(crc, "a.npz' member 'w.npy' has CRC-32 0x"));
    CHECK(contains(crc, "(the file is corrupt)"));

    // Every single-bit-pattern flip of numpy's files either reads (timestamps, attributes) or
    // throws focal::error: nothing else, and nothing the sanitizers object to.
    for (const char* name : {"stored.npz", "compressed.npz", "streamed.npz"}) {
        CAPTURE(name);
        const std::string original = read_bytes(focal_test::data_dir() / "npz" / name);
        int failures = 0;
        for (std::size_t i = 0; i < original.size(); ++i) {
            CAPTURE(i);
            std::string flipped = original;
            flipped[i] = static_cast<char>(flipped[i] ^ 0xa5);
            write_bytes(dir.path / "flip.npz", flipped);
            try {
                read_npz(dir.path / "flip.npz");
            } catch (const focal::error&) {
                ++failures;
            }
        }
        CHECK(failures > 0);
    }
}

TEST_CASE("npz: malformed archives and .npy members name what is wrong") {
    const std::string ok = npy_f4("(2,)", 8);
    CHECK(contains(read_error({{"x.npy", ok}, {"x.npy", ok}}), "has two members named 'x.npy'"));
    CHECK(contains(read_error({{"x.txt", ok}}), "member 'x.txt' is not a .npy array"));
    CHECK(contains(read_error({{"x.npy", ok, 0x1}}), "member 'x.npy' is encrypted"));
    CHECK(contains(read_error({{"x.npy", ok, 0, 12}}), "uses compression method 12"));
    CHECK(contains(read_error({{"x.npy", "not an npy"}}), "member 'x.npy' is not a .npy array (no \\x93NUMPY magic)"));

    const std::string size = read_error({{"x.npy", npy_f4("(2, 3)", 20)}});
    CHECK(contains(size, "member 'x.npy' has 20 data bytes, but shape (2, 3) of '<f4' needs 24"));
    CHECK(contains(read_error({{"x.npy", npy_f4("(2, 3)", 28)}}), "has 28 data bytes"));
    CHECK(contains(read_error({{"x.npy", npy_f4("(4294967296, 4294967296, 4294967296)", 0)}}),
                   "whose size overflows"));
    CHECK(contains(read_error({{"x.npy", npy_f4("(99999999999999999999999,)", 0)}}), "dimension that overflows"));
    CHECK(contains(read_error({{"x.npy", npy_f4("(-1,)", 0)}}), "not a tuple of non-negative integers"));
    // A zero dimension makes any shape empty, as in numpy.
    {
        scratch_dir dir;
        write_bytes(dir.path / "z.npz", make_zip({{"x.npy", npy_f4("(0, 4294967296, 4294967296)", 0)}}));
        CHECK(read_npz(dir.path / "z.npz").at("x").size() == 0);
    }

    CHECK(contains(read_error({{"x.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8)}}),
                   "is in Fortran order; expected C order"));
    CHECK(contains(read_error({{"x.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8)}}),
                   "has dtype '>f4'; expected little-endian"));
    CHECK(contains(read_error({{"x.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16)}}),
                   "has dtype '<c8'"));
    CHECK(contains(
        read_error({{"x.npy", npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8)}}),
        "structured dtype"));
    CHECK(contains(read_error({{"x.npy", npy("{'descr': '<f4', 'shape': (2,), }", 8)}}),
                   "without descr, fortran_order or shape"));
    CHECK(contains(read_error({{"x.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8)}}),
                   "unexpected key 'x'"));
    CHECK(contains(read_error({{"x.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8)}}),
                   "malformed header"));
    std::string v4 = ok;
    v4[6] = 4;
    CHECK(contains(read_error({{"x.npy", v4}}), "has .npy version 4.0; expected 1.0, 2.0 or 3.0"));
    std::string long_header = ok;
    long_header[8] = '\xff';
    CHECK(contains(read_error({{"x.npy", long_header}}), "(truncated)"));
    // Version 2.0 with a 4-byte header length, and the Python 2 'L' suffix of old numpy.
    {
        scratch_dir dir;
        write_bytes(dir.path / "v2.npz",
                    make_zip({{"x.npy", npy("{'descr':'<f8','fortran_order':False,'shape':(3L,)}", 24, 2)}}));
        CHECK(read_npz(dir.path / "v2.npz").at("x").as_float64() == std::vector<double>{0, 0, 0});
    }

    // Offsets and sizes that point outside the file.
    scratch_dir dir;
    std::string zip = make_zip({{"x.npy", ok}});
    const std::size_t cd = zip.find("PK\x01\x02");
    std::string bad_offset = zip;
    bad_offset[cd + 42] = '\x7f';  // local header offset
    write_bytes(dir.path / "offset.npz", bad_offset);
    CHECK(contains(error_of([&] { read_npz(dir.path / "offset.npz"); }), "where no local header lies"));
    std::string bad_size = zip;
    bad_size[cd + 20 + 3] = '\x10';  // compressed size, 256 MiB more
    bad_size[cd + 24 + 3] = '\x10';
    write_bytes(dir.path / "size.npz", bad_size);
    CHECK(contains(error_of([&] { read_npz(dir.path / "size.npz"); }), "past the central directory"));
    std::string bad_cd = zip;
    bad_cd[bad_cd.size() - 22 + 16] = '\x70';  // central directory offset
    write_bytes(dir.path / "cd.npz", bad_cd);
    CHECK(contains(error_of([&] { read_npz(dir.path / "cd.npz"); }), "has its central directory at offset"));
}

TEST_CASE("npz: reads zip64 end records and zip64 central directory fields") {
    scratch_dir dir;
    std::string data = npy_f4("(2,)", 0);
    const float values[2] = {1.5f, -3.0f};
    data.append(reinterpret_cast<const char*>(values), sizeof values);
    const std::string zip = make_zip({{"a.npy", data}, {"b.npy", npy_f4("()", 4)}}, true);
    write_bytes(dir.path / "zip64.npz", zip);
    const npz_archive a = read_npz(dir.path / "zip64.npz");
    CHECK(a.size() == 2);
    CHECK(a.at("a").as_float32() == std::vector<float>{1.5f, -3.0f});
    CHECK(a.at("b").shape.empty());

    // Every truncation and every flipped byte of it is a focal::error or still reads.
    for (std::size_t n = 0; n < zip.size(); ++n) {
        write_bytes(dir.path / "cut.npz", zip.substr(0, n));
        CHECK_THROWS_AS(read_npz(dir.path / "cut.npz"), focal::error);
    }
    for (std::size_t i = 0; i < zip.size(); ++i) {
        std::string flipped = zip;
        flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
        write_bytes(dir.path / "flip.npz", flipped);
        try {
            read_npz(dir.path / "flip.npz");
        } catch (const focal::error&) {
        }
    }
    // The record the locator points at must be there.
    std::string bad = zip;
    bad[bad.size() - 22 - 20 + 8] = '\x01';
    write_bytes(dir.path / "bad.npz", bad);
    CHECK(contains(error_of([&] { read_npz(dir.path / "bad.npz"); }), "has a zip64 locator pointing at offset"));
}

TEST_CASE("npz: accessing the wrong dtype names the array and both types") {
    const npz_archive a = sample_archive();
    const std::string message = error_of([&] { a.at("conv.weight").as_float64("conv.weight"); });
    CHECK(contains(message, "'conv.weight'"));
    CHECK(contains(message, "float64"));
    CHECK(contains(message, "got float32"));
    CHECK_THROWS_AS(a.at("step").as_float32(), focal::error);
    CHECK_NOTHROW(a.at("step").as_int64());
    CHECK(dtype_name(dtype::int64) == "int64");
    CHECK(element_count({2, 3, 4}) == 24);
    CHECK(element_count({}) == 1);
    CHECK_THROWS_AS(element_count({std::size_t{1} << 40, std::size_t{1} << 40}), focal::error);
}

TEST_CASE("npz: a failed write leaves the previous file untouched and no temporary behind") {
    scratch_dir dir;
    const fs::path target = dir.path / "ckpt.npz";
    write_npz(target, sample_archive());
    const std::string before = read_bytes(target);

    // An array whose values disagree with its shape: caught before the disk is touched.
    npz_archive bad = sample_archive();
    bad["broken"] = {{2, 3}, std::vector<float>(5)};
    const std::string mismatch = error_of([&] { write_npz(target, bad); });
    CHECK(contains(mismatch, "write_npz: '"));
    CHECK(contains(mismatch, "array 'broken' has shape (2, 3) (6 elements) but holds 5 values"));
    bad["broken"] = {{std::size_t{1} << 40, std::size_t{1} << 40}, std::vector<float>(1)};
    CHECK(contains(error_of([&] { write_npz(target, bad); }), "(overflowing elements)"));
    bad.erase("broken");
    bad[""] = {{}, std::vector<float>{1}};
    CHECK(contains(error_of([&] { write_npz(target, bad); }), "empty name"));
    CHECK(read_bytes(target) == before);
    CHECK(same(read_npz(target), sample_archive()));
    CHECK(dir.entries() == std::vector<std::string>{"ckpt.npz"});

    // A directory that does not exist: no directory is created.
    const std::string no_dir = error_of([&] { write_npz(dir.path / "no" / "ckpt.npz", sample_archive()); });
    CHECK(contains(no_dir, "does not exist"));
    CHECK(!fs::exists(dir.path / "no"));

    // The rename fails (a directory sits at the target): the temporary file, fully written by
    // then, is removed, and the directory is left as it was.
    fs::create_directory(dir.path / "busy.npz");
    write_bytes(dir.path / "busy.npz" / "inside", "x");
    const std::string rename = error_of([&] { write_npz(dir.path / "busy.npz", sample_archive()); });
    CHECK(contains(rename, "cannot rename"));
    CHECK(fs::is_directory(dir.path / "busy.npz"));
    CHECK(read_bytes(dir.path / "busy.npz" / "inside") == "x");
    CHECK(dir.entries() == std::vector<std::string>{"busy.npz", "ckpt.npz"});
    CHECK(read_bytes(target) == before);
}

TEST_CASE("npz: temporaries of writers that no longer exist are removed, nothing else") {
    scratch_dir dir;
    const auto file = dir.path / "checkpoint.npz";
    npz_archive a;
    a["w"] = {{1}, std::vector<float>{1}};
    write_npz(file, a);
    // A process that has exited (and been reaped): its pid names no process now.
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    const auto dead = dir.path / ("checkpoint.npz.tmp-" + std::to_string(child));
    const auto mine = dir.path / ("checkpoint.npz.tmp-" + std::to_string(::getpid()));
    const auto parent = dir.path / ("checkpoint.npz.tmp-" + std::to_string(::getppid()));
    const auto not_a_pid = dir.path / "checkpoint.npz.tmp-backup";
    const auto other = dir.path / ("other.npz.tmp-" + std::to_string(child));
    for (const auto& f : {dead, mine, parent, not_a_pid, other}) write_bytes(f, "partial");
    CHECK(remove_stale_temporaries(file) == 1);
    CHECK_FALSE(std::filesystem::exists(dead));
    for (const auto& f : {file, mine, parent, not_a_pid, other}) CHECK(std::filesystem::exists(f));
    CHECK(remove_stale_temporaries(file) == 0);
}
