# Compile options for focal's own tests, benchmarks and examples (never for users of the targets).
add_library(focal_project_options INTERFACE)
target_compile_options(focal_project_options INTERFACE
  $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-Wall -Wextra -Wpedantic>
  # GCC 12 reports (maybe-)uninitialized inside its own avx512fintrin.h (the deliberately
  # undefined _mm512_undefined_* sources) once xsimd's kernels are inlined: false positives in a
  # system header that no pragma can reach. Clang keeps checking -Wuninitialized for our code.
  $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-maybe-uninitialized -Wno-uninitialized>
  # GCC 12 also reports -Wrestrict inside libstdc++'s char_traits for plain string concatenation
  # ("a" + s + "b", GCC bug 105329) at -O2 and above.
  $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-restrict>)
if(FOCAL_WARNINGS_AS_ERRORS)
  target_compile_options(focal_project_options INTERFACE $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-Werror>)
endif()
# GCC 12 at -O0 fails to compile xsimd 8.1's AVX-512BW select for integer batches (an upstream
# bug reached through xsimd::log): Debug builds of focal's own targets use -O1 with GCC.
target_compile_options(focal_project_options INTERFACE $<$<AND:$<COMPILE_LANG_AND_ID:CXX,GNU>,$<CONFIG:Debug>>:-O1>)
if(FOCAL_NATIVE_ARCH)
  target_compile_options(focal_project_options INTERFACE $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-march=native>)
endif()
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# The best host backend available: focal::xsimd when found, else the scalar core.
if(TARGET focal::xsimd)
  set(FOCAL_HOST_TARGET focal::xsimd)
else()
  set(FOCAL_HOST_TARGET focal::focal)
endif()
