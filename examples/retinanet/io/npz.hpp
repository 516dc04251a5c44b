// io/npz.hpp: numpy .npz archives, the format of checkpoints and of imported torchvision weights.
//
// read_npz accepts what np.savez (stored, zip64 local headers) and np.savez_compressed (deflate)
// write, with .npy members of version 1.0, 2.0 or 3.0 in C order. write_npz writes a stored zip of
// .npy 1.0 members that np.load reads, atomically (a temporary file renamed over the target).
// Every malformed input, down to one flipped byte (CRC-32), is a focal::error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace retinanet::io {

// The element types an archive holds in memory. Reading widens the other integer and bool dtypes
// to int64 so that callers handle three types, not ten.
enum class dtype { float32, float64, int64 };

// "float32", "float64" or "int64".
std::string_view dtype_name(dtype type);

// The number of elements of `shape` (1 for a scalar, shape ()); focal::error on overflow.
std::size_t element_count(const std::vector<std::size_t>& shape);

struct npz_array {
    std::vector<std::size_t> shape;  // () for a scalar
    std::variant<std::vector<float>, std::vector<double>, std::vector<std::int64_t>> values;

    dtype type() const { return static_cast<dtype>(values.index()); }
    std::size_t size() const;  // number of values held (element_count(shape) in a valid array)

    // The values as the named type; focal::error naming `name` (the key, for the message) and the
    // dtype found when the type differs. No conversion: a checkpoint that changed dtype is a bug.
    const std::vector<float>& as_float32(std::string_view name = "array") const;
    const std::vector<double>& as_float64(std::string_view name = "array") const;
    const std::vector<std::int64_t>& as_int64(std::string_view name = "array") const;
    std::vector<float>& as_float32(std::string_view name = "array");
    std::vector<double>& as_float64(std::string_view name = "array");
    std::vector<std::int64_t>& as_int64(std::string_view name = "array");
};

// Member name without the ".npy" suffix (as np.load's keys) -> array. Sorted, so writing the
// same archive twice gives the same bytes.
using npz_archive = std::map<std::string, npz_array>;

// Reads a whole archive. focal::error on a missing or unreadable file, anything that is not a
// valid zip of .npy members, a CRC mismatch, encrypted or non-.npy members, duplicate names, and
// dtypes other than little-endian f4 f8 i8 i4 i2 i1 u4 u2 u1 b1 (the integers and bools become int64).
npz_archive read_npz(const std::filesystem::path& file);

// Writes `archive` to `file` atomically: everything is checked first (shape vs number of values,
// names, the 4 GiB limit of a zip without zip64), then written to "<file>.tmp-<pid>" in the same
// directory, flushed, fsync'ed and renamed over `file`. On any failure the temporary file is
// removed and an existing `file` is left untouched. The directory must exist.
void write_npz(const std::filesystem::path& file, const npz_archive& archive);

// Removes the "<file>.tmp-<pid>" files that writers killed mid-write (SIGKILL, power loss) left
// behind, when process <pid> no longer exists; returns how many. Never touches `file` itself.
std::size_t remove_stale_temporaries(const std::filesystem::path& file);

}  // namespace retinanet::io
