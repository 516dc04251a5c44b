// io/npz.cpp: npz archives as a zip (io/zip_archive.hpp) of .npy members (io/npy_format.hpp),
// member "<key>.npy" holding array <key>, written through io/atomic_file.hpp.
#include "io/npz.hpp"

#include <fstream>
#include <system_error>
#include <utility>

#include <focal/core/error.hpp>

#include "io/atomic_file.hpp"
#include "io/npy_format.hpp"
#include "io/zip_archive.hpp"
#include "support/check.hpp"

namespace retinanet::io {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& file) { return concat("'", file.string(), "'"); }

std::vector<std::uint8_t> read_whole_file(const fs::path& file) {
    std::error_code ec;
    const auto status = fs::status(file, ec);
    if (!fs::exists(status)) throw focal::error(concat("read_npz: ", quoted(file), " does not exist"));
    if (!fs::is_regular_file(status))
        throw focal::error(concat("read_npz: ", quoted(file), " is not a regular file"));
    const auto size = fs::file_size(file, ec);
    std::ifstream in(file, std::ios::binary);
    if (ec || !in) throw focal::error(concat("read_npz: ", quoted(file), " cannot be opened"));
    std::vector<std::uint8_t> bytes(size);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    if (static_cast<std::uintmax_t>(in.gcount()) != size)
        throw focal::error(concat("read_npz: ", quoted(file), " could not be read (got ", in.gcount(), " of ",
                                  size, " bytes)"));
    return bytes;
}

template <class T, class Variant>
auto& checked_get(Variant& values, dtype want, std::string_view name) {
    if (auto* v = std::get_if<std::vector<T>>(&values)) return *v;
    fail("npz_array", concat("'", name, "'"), concat(dtype_name(want), " values"),
         dtype_name(static_cast<dtype>(values.index())));
}

}  // namespace

std::string_view dtype_name(dtype type) {
    switch (type) {
        case dtype::float32: return "float32";
        case dtype::float64: return "float64";
        case dtype::int64: return "int64";
    }
    return "unknown";
}

std::size_t element_count(const std::vector<std::size_t>& shape) {
    const auto n = detail::checked_count(shape);
    if (!n) fail("element_count", "shape", "a shape whose element count fits size_t", detail::shape_string(shape));
    return *n;
}

std::size_t npz_array::size() const {
    return std::visit([](const auto& v) { return v.size(); }, values);
}

const std::vector<float>& npz_array::as_float32(std::string_view name) const {
    return checked_get<float>(values, dtype::float32, name);
}
const std::vector<double>& npz_array::as_float64(std::string_view name) const {
    return checked_get<double>(values, dtype::float64, name);
}
const std::vector<std::int64_t>& npz_array::as_int64(std::string_view name) const {
    return checked_get<std::int64_t>(values, dtype::int64, name);
}
std::vector<float>& npz_array::as_float32(std::string_view name) {
    return checked_get<float>(values, dtype::float32, name);
}
std::vector<double>& npz_array::as_float64(std::string_view name) {
    return checked_get<double>(values, dtype::float64, name);
}
std::vector<std::int64_t>& npz_array::as_int64(std::string_view name) {
    return checked_get<std::int64_t>(values, dtype::int64, name);
}

npz_archive read_npz(const std::filesystem::path& file) {
    const std::vector<std::uint8_t> bytes = read_whole_file(file);
    const std::string context = concat("read_npz: ", quoted(file));
    auto fail = [&](const auto&... parts) { throw focal::error(concat(context, " ", parts...)); };
    detail::zip_reader zip(context, bytes);
    npz_archive archive;
    for (std::uint64_t i = 0; i < zip.entries(); ++i) {
        const detail::zip_entry e = zip.next_entry();
        if (!e.name.ends_with(".npy")) fail("member '", e.name, "' is not a .npy array (its name must end in '.npy')");
        const detail::bytes_view stored = zip.stored_bytes(e);
        std::string key = e.name.substr(0, e.name.size() - 4);
        if (archive.count(key)) fail("has two members named '", e.name, "'; member names must be unique");
        std::vector<std::uint8_t> inflated;
        const detail::bytes_view contents = zip.contents(e, stored, inflated);
        archive.emplace(std::move(key), detail::parse_npy(contents, concat(context, " member '", e.name, "'")));
    }
    return archive;
}

void write_npz(const std::filesystem::path& file, const npz_archive& archive) {
    const std::string context = concat("write_npz: ", quoted(file));
    auto fail = [&](const auto&... parts) { throw focal::error(concat(context, ": ", parts...)); };
    // Everything is checked and laid out before the disk is touched.
    if (archive.size() > 0xffff) fail("has ", archive.size(), " arrays; a zip without zip64 holds at most 65535");
    detail::stored_zip_writer zip(context);
    for (const auto& [key, array] : archive) {
        if (key.empty()) fail("has an array with an empty name");
        if (key.size() + 4 > 0xffff) fail("has an array name of ", key.size(), " bytes; expected at most 65531");
        const auto count = detail::checked_count(array.shape);
        if (!count || *count != array.size())
            fail("array '", key, "' has shape ", detail::shape_string(array.shape), " (",
                 count ? std::to_string(*count) : std::string("overflowing"), " elements) but holds ", array.size(),
                 " values");
        std::string header = detail::npy_header(array);
        if (header.size() > 0xffff) fail("array '", key, "' has too many dimensions for a .npy 1.0 header");
        const void* data = std::visit([](const auto& v) -> const void* { return v.data(); }, array.values);
        const std::size_t data_bytes = std::visit([](const auto& v) { return v.size() * sizeof(v[0]); }, array.values);
        zip.add(key + ".npy", std::move(header), data, data_bytes);
    }
    zip.check_size();

    detail::atomic_file out(file, context);
    zip.write([&](const void* data, std::size_t size) { out.write(data, size); });
    out.commit();
}

std::size_t remove_stale_temporaries(const std::filesystem::path& file) {
    return detail::remove_stale_temporaries(file);
}

}  // namespace retinanet::io
