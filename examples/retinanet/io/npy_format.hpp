// io/npy_format.hpp: numpy's .npy format, one array per npz member.
//
// A .npy array is the magic "\x93NUMPY", the version as two bytes (1.0, 2.0 or 3.0), the header
// length (uint16 little-endian in 1.0, uint32 in 2.0 and 3.0), the header and then the data. The
// header is a Python dict literal, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
// padded with spaces and ended by '\n': descr is the dtype (byte order '<' little, '>' big, '|' not
// applicable, '=' native; kind; item size), shape a tuple, () for a scalar, and the data are the
// elements in C order (last index fastest) unless fortran_order is True.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "io/little_endian.hpp"
#include "io/npz.hpp"

namespace retinanet::io::detail {

// The shape as numpy prints it: "()", "(3,)", "(2, 3)".
std::string shape_string(const std::vector<std::size_t>& shape);

// The number of elements of `shape` (1 for a scalar); nullopt when it overflows size_t. A zero
// dimension makes it 0 however large the others are (numpy agrees).
std::optional<std::size_t> checked_count(const std::vector<std::size_t>& shape);

// The array in a .npy member: a header of version 1.0, 2.0 or 3.0, C order, a little-endian dtype
// f4 f8 i8 i4 i2 i1 u4 u2 u1 or b1 (the integers and bools widened to int64), exactly the data
// bytes the shape needs. Every failure is a focal::error "<context> <what is wrong>", `context`
// naming the member ("read_npz: '<file>' member '<name>'").
npz_array parse_npy(bytes_view bytes, const std::string& context);

// The bytes before the data of `array` in .npy 1.0, byte for byte what numpy 1.24's np.save
// writes: magic, version, header length, the dict, spaces and '\n', the whole a multiple of 64
// bytes. The length field has 16 bits: callers check that the result is at most 65535 bytes (a
// longer one takes a shape of thousands of dimensions).
std::string npy_header(const npz_array& array);

}  // namespace retinanet::io::detail
