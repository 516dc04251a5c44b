// The example's argument checks: a failed check throws focal::error (focal's public error type)
// with the message form focal's own checks use, "<where>: <what> must be <expected>, got <got>".
#pragma once

#include <sstream>
#include <string>
#include <string_view>

#include <focal/core/error.hpp>

namespace retinanet {

// The arguments written one after another, as by operator<< (doubles with 17 digits):
// concat("[", 3, " x ", 4, "]") is "[3 x 4]".
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    out.precision(17);
    (out << ... << parts);
    return out.str();
}

// "<where>: <what> must be <expected>, got <got...>".
template <class... Got>
std::string check_message(std::string_view where, std::string_view what, std::string_view expected, const Got&... got) {
    return concat(where, ": ", what, " must be ", expected, ", got ", got...);
}

// Throws focal::error with check_message's text.
template <class... Got>
[[noreturn]] void fail(std::string_view where, std::string_view what, std::string_view expected, const Got&... got) {
    throw focal::error(check_message(where, what, expected, got...));
}

// fail(...) unless ok.
template <class... Got>
void require(bool ok, std::string_view where, std::string_view what, std::string_view expected, const Got&... got) {
    if (!ok) fail(where, what, expected, got...);
}

}  // namespace retinanet
