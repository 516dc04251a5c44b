// focal/core/error.hpp: the one exception type focal throws, and the checks that build its message.
//
// Every message has the form
//   "<function>: <argument> must be <expectation>, got <what came>"
// so a caller can tell which input was wrong without reading focal's source.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace focal {

// Thrown by every checked entry point on bad input. It is a std::invalid_argument, so code that
// already handles the standard exception keeps working.
class error : public std::invalid_argument {
public:
    explicit error(const std::string& message) : std::invalid_argument(message) {}
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    out.precision(17);
    (out << ... << parts);
    return out.str();
}

// Throws focal::error("<function>: <argument> must be <expected>, got <got...>").
template <class... Got>
[[noreturn]] void fail(std::string_view function, std::string_view argument, std::string_view expected,
                       const Got&... got) {
    throw error(concat(function, ": ", argument, " must be ", expected, ", got ", got...));
}

template <class... Got>
void require(bool ok, std::string_view function, std::string_view argument, std::string_view expected,
             const Got&... got) {
    if (!ok) fail(function, argument, expected, got...);
}

}  // namespace detail
}  // namespace focal
