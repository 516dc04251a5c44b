// An output stream that drops what it is given: the progress lines of data-parallel ranks other
// than 0.
#pragma once

#include <ostream>
#include <streambuf>

namespace retinanet {

inline std::streambuf& discarding_buffer() {
    struct discard final : std::streambuf {
        int overflow(int c) override { return c; }
    };
    static discard buffer;
    return buffer;
}

inline std::ostream& discarded_output() {
    static std::ostream stream(&discarding_buffer());
    return stream;
}

}  // namespace retinanet
