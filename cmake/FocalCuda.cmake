# CUDA for focal's own CUDA tests, benchmarks and compile checks (the headers need nothing from CMake:
# a user's .cu file includes <focal/cuda/...> and links CUDA's runtime).
#   FOCAL_CUDA_FOUND            TRUE when nvcc was found and the CUDA language is enabled
#   focal_cuda_target(<target>) C++20, sm_80 + sm_90 unless CMAKE_CUDA_ARCHITECTURES says otherwise,
#                               warnings (as errors with FOCAL_WARNINGS_AS_ERRORS), cudart
include_guard(GLOBAL)  # included once, from the top-level CMakeLists.txt
include(CheckLanguage)

set(FOCAL_CUDA_FOUND FALSE)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    # A100 and H100 / H200; set CMAKE_CUDA_ARCHITECTURES=native (or 90) for a quicker build of one.
    set(CMAKE_CUDA_ARCHITECTURES "80;90")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_EXTENSIONS OFF)
  if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_ID STREQUAL "NVIDIA"
     AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
    # CMake before 3.26 does not know nvcc's C++20 flag (nvcc has it since CUDA 12.0).
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  set(FOCAL_CUDA_FOUND TRUE)
  message(STATUS "focal: CUDA ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), architectures ${CMAKE_CUDA_ARCHITECTURES}")
endif()

function(focal_cuda_target target)
  target_link_libraries(${target} PRIVATE focal::focal CUDA::cudart)
  target_compile_options(${target} PRIVATE
    # A host-only function called from a FOCAL_HD one is an error, not a warning.
    $<$<COMPILE_LANG_AND_ID:CUDA,NVIDIA>:--Werror=cross-execution-space-call>)
  if(NOT WIN32)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANG_AND_ID:CUDA,NVIDIA>:-Xcompiler=-Wall,-Wextra>)
  endif()
  if(FOCAL_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANG_AND_ID:CUDA,NVIDIA>:--Werror=all-warnings>)
  endif()
endfunction()
