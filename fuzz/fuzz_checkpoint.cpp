// fuzz/fuzz_checkpoint.cpp: the example's npz reader (examples/retinanet/io/npz.hpp) and
// checkpoint loader (examples/retinanet/train/checkpoint.hpp) on arbitrary files.
//
// The input is the file. read_npz takes a path, so the bytes go to a file in /dev/shm (one per
// process). Each input is read twice: as it is, and with the CRC-32 of its stored members (and of
// deflate members that inflate) patched to match, so that mutations get past the CRC check into
// the .npy parser.
//
// Checked beyond "no crash":
//   * read_npz returns or throws focal::error (never another exception);
//   * an accepted archive holds arrays whose value count equals the product of their shape;
//     write_npz of it, read again, gives the same keys, shapes, dtypes and bits;
//   * load_checkpoint into a tiny RetinaNet (model::tiny_config) and into a two-parameter list:
//     success leaves every parameter's size equal to the product of its shape (unchanged) and
//     velocities sized as the parameters; failure (focal::error) leaves every parameter's values
//     exactly as they were.
//
// FOCAL_FUZZ_WRITE_SEEDS=<dir> fuzz_checkpoint: writes seed checkpoints (save_checkpoint of both
// models) into <dir> and exits; fuzz/make_corpus.py uses it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include <unistd.h>
#include <zlib.h>

#include "byte_reader.hpp"
#include "io/npz.hpp"
#include "model/config.hpp"
#include "model/retinanet_model.hpp"
#include "train/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
namespace io = retinanet::io;
namespace train = retinanet::train;
using namespace focal_fuzz;

fs::path scratch(const char* suffix) {
    static const fs::path dir = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    return dir / ("focal_fuzz_checkpoint_" + std::to_string(::getpid()) + suffix);
}

void write_file(const fs::path& file, const std::uint8_t* data, std::size_t size) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
        std::fprintf(stderr, "fuzz_checkpoint: cannot write %s\n", file.c_str());
        std::abort();
    }
}

template <class T>
T load(const std::vector<std::uint8_t>& b, std::size_t pos) {
    T v;
    std::memcpy(&v, b.data() + pos, sizeof v);
    return v;
}
template <class T>
void store(std::vector<std::uint8_t>& b, std::size_t pos, T v) {
    std::memcpy(b.data() + pos, &v, sizeof v);
}
bool fits(std::uint64_t pos, std::uint64_t n, std::uint64_t limit) { return n <= limit && pos <= limit - n; }

// The CRC-32 fields of the central directory and local headers, recomputed from the member data
// (stored members; deflate members whose stream inflates to their declared size). Only the
// simple layout (no archive comment) is patched; anything odd stops the patching.
std::vector<std::uint8_t> with_fixed_crcs(std::vector<std::uint8_t> b) {
    const std::size_t size = b.size();
    if (size < 22 || load<std::uint32_t>(b, size - 22) != 0x06054b50) return b;
    const std::size_t eocd = size - 22;
    const std::uint64_t entries = load<std::uint16_t>(b, eocd + 10);
    std::uint64_t pos = load<std::uint32_t>(b, eocd + 16);
    for (std::uint64_t i = 0; i < entries; ++i) {
        if (!fits(pos, 46, eocd) || load<std::uint32_t>(b, pos) != 0x02014b50) break;
        const std::uint16_t method = load<std::uint16_t>(b, pos + 10);
        const std::uint64_t compressed = load<std::uint32_t>(b, pos + 20), uncompressed = load<std::uint32_t>(b, pos + 24);
        const std::uint64_t name_len = load<std::uint16_t>(b, pos + 28), extra_len = load<std::uint16_t>(b, pos + 30);
        const std::uint64_t comment_len = load<std::uint16_t>(b, pos + 32), offset = load<std::uint32_t>(b, pos + 42);
        if (fits(offset, 30, size) && load<std::uint32_t>(b, offset) == 0x04034b50) {
            const std::uint64_t data = offset + 30 + load<std::uint16_t>(b, offset + 26) + load<std::uint16_t>(b, offset + 28);
            if (fits(data, compressed, size)) {
                std::uint32_t crc = 0;
                bool ok = false;
                if (method == 0) {
                    crc = static_cast<std::uint32_t>(::crc32_z(0, b.data() + data, compressed));
                    ok = true;
                } else if (method == 8 && uncompressed <= (std::uint64_t(1) << 22)) {
                    std::vector<std::uint8_t> out(uncompressed + 1);
                    z_stream zs{};
                    if (inflateInit2(&zs, -15) == Z_OK) {
                        zs.next_in = b.data() + data;
                        zs.avail_in = static_cast<uInt>(compressed);
                        zs.next_out = out.data();
                        zs.avail_out = static_cast<uInt>(out.size());
                        if (inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == uncompressed) {
                            crc = static_cast<std::uint32_t>(::crc32_z(0, out.data(), uncompressed));
                            ok = true;
                        }
                        inflateEnd(&zs);
                    }
                }
                if (ok) {
                    store(b, pos + 16, crc);
                    store(b, offset + 14, crc);
                }
            }
        }
        pos += 46 + name_len + extra_len + comment_len;
    }
    return b;
}

bool same_array(const io::npz_array& a, const io::npz_array& b) {
    if (a.shape != b.shape || a.type() != b.type() || a.size() != b.size()) return false;
    return std::visit(
        [&b](const auto& va) {
            using V = std::decay_t<decltype(va)>;
            const V& vb = std::get<V>(b.values);
            return va.empty() || std::memcmp(va.data(), vb.data(), va.size() * sizeof(va[0])) == 0;
        },
        a.values);
}

void check_archive(const io::npz_archive& archive) {
    for (const auto& entry : archive) {  // (no structured binding: clang 14 cannot capture one)
        const std::string& key = entry.first;
        const io::npz_array& array = entry.second;
        std::size_t count = 0;
        FUZZ_CHECKF(succeeds([&] { count = io::element_count(array.shape); }), "array '%s': its shape overflows\n", key.c_str());
        FUZZ_CHECKF(array.size() == count, "array '%s': %zu values for %zu elements\n", key.c_str(), array.size(), count);
        FUZZ_CHECK(array.type() == io::dtype::float32 || array.type() == io::dtype::float64 || array.type() == io::dtype::int64);
    }
    // Written and read back: the same archive.
    const fs::path copy = scratch(".copy.npz");
    if (!succeeds([&] { io::write_npz(copy, archive); })) {
        // The writer refuses only what the reader can produce but a zip writer cannot name.
        FUZZ_CHECK(archive.count("") == 1);
        return;
    }
    io::npz_archive back;
    FUZZ_CHECK(succeeds([&] { back = io::read_npz(copy); }));
    FUZZ_CHECK(back.size() == archive.size());
    for (const auto& [key, array] : archive) {
        const auto it = back.find(key);
        FUZZ_CHECKF(it != back.end() && same_array(array, it->second), "array '%s' changed on a round trip\n", key.c_str());
    }
}

// A parameter list and what load_checkpoint may do to it.
struct model_under_test {
    retinanet::cpu::parameter_list<float> params;

    void check_load(const fs::path& file) const {
        std::vector<std::vector<float>> before;
        std::vector<std::size_t> sizes;
        for (const auto* p : params) {
            before.push_back(p->value);
            std::size_t n = 1;
            for (const std::size_t d : p->shape) n *= d;
            sizes.push_back(n);
        }
        std::vector<std::vector<float>> velocity;
        train::run_state state;
        bool full = false;
        const bool ok = succeeds([&] { full = train::load_checkpoint(file, params, &velocity, &state); });
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto& v = params[i]->value;
            if (ok) {
                FUZZ_CHECKF(v.size() == sizes[i], "parameter '%s': %zu values for shape of %zu\n", params[i]->name.c_str(),
                            v.size(), sizes[i]);
            } else {
                FUZZ_CHECKF(v.size() == before[i].size() &&
                                (v.empty() || std::memcmp(v.data(), before[i].data(), v.size() * sizeof(float)) == 0),
                            "parameter '%s' changed by a failed load_checkpoint\n", params[i]->name.c_str());
            }
        }
        if (ok && full) {
            FUZZ_CHECK(velocity.size() == params.size());
            for (std::size_t i = 0; i < params.size(); ++i) FUZZ_CHECK(velocity[i].size() == sizes[i]);
        }
        if (ok) {  // the next input starts from the same parameters
            for (std::size_t i = 0; i < params.size(); ++i) params[i]->value = before[i];
        }
    }
};

// Two parameters named like a model's, so that small archives can be complete checkpoints.
struct small_model {
    retinanet::cpu::parameter<float> weight{"head.weight", {2, 3}, 0.5f};
    retinanet::cpu::parameter<float> bias{"head.bias", {3}, -1.0f};
    model_under_test list{{&weight, &bias}};
};

struct models {
    retinanet::model::retinanet_model<float> tiny{retinanet::model::tiny_config(3)};
    model_under_test tiny_list{tiny.parameters()};
    small_model small;
};

models& the_models() {
    static models m;
    return m;
}

void write_seeds(const fs::path& dir) {
    models& m = the_models();
    m.tiny.initialize(1);
    for (auto* list : {&m.tiny_list.params, &m.small.list.params}) {
        std::vector<std::vector<float>> velocity;
        for (const auto* p : *list) velocity.emplace_back(p->value.size(), 0.25f);
        train::run_state state{.iteration = 7, .total_iterations = 100, .loss_normalizer = 42.5, .config_name = "tiny"};
        const bool tiny = list == &m.tiny_list.params;
        train::save_checkpoint(dir / (tiny ? "tiny_checkpoint.npz" : "small_checkpoint.npz"), *list, velocity, state);
        if (!tiny) train::save_checkpoint(dir / "small_checkpoint_no_velocity.npz", *list, {}, state);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (const char* dir = std::getenv("FOCAL_FUZZ_WRITE_SEEDS")) {
        write_seeds(dir);
        std::exit(0);
    }
    the_models();
    scratch("");  // its static path outlives the handler below only if it is built first
    std::atexit([] {
        std::error_code ec;
        fs::remove(scratch(".npz"), ec);
        fs::remove(scratch(".copy.npz"), ec);
    });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fs::path file = scratch(".npz");
    const std::vector<std::uint8_t> raw(data, data + size);
    const std::vector<std::uint8_t> fixed = with_fixed_crcs(raw);
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1 && fixed == raw) break;
        const auto& bytes = pass == 0 ? raw : fixed;
        write_file(file, bytes.data(), bytes.size());
        io::npz_archive archive;
        if (!succeeds([&] { archive = io::read_npz(file); })) continue;
        check_archive(archive);
        models& m = the_models();
        m.small.list.check_load(file);
        m.tiny_list.check_load(file);
    }
    return 0;
}
