# The library targets: focal::focal (header-only core) and optional backends / adapters.
#   focal::focal    C++20, threads; scalar host code, compiles under nvcc
#   focal::xsimd    + xsimd, defines FOCAL_USE_XSIMD=1 (SIMD drivers)
#   focal::eigen    + Eigen3::Eigen, for <focal/adapt/eigen.hpp>
#   focal::xtensor  + xtensor, for <focal/adapt/xtensor.hpp>
#   focal::json     + nlohmann_json, for COCO JSON reading and writing (<focal/eval/coco_json.hpp>)
find_package(Threads REQUIRED)

add_library(focal INTERFACE)
add_library(focal::focal ALIAS focal)
target_include_directories(focal INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(focal INTERFACE cxx_std_20)
target_link_libraries(focal INTERFACE Threads::Threads)

if(FOCAL_USE_XSIMD)
  # Debian's xsimd config does not find xtl itself.
  find_package(xtl QUIET)
  find_package(xsimd QUIET)
  if(xsimd_FOUND)
    add_library(focal_xsimd INTERFACE)
    add_library(focal::xsimd ALIAS focal_xsimd)
    set_target_properties(focal_xsimd PROPERTIES EXPORT_NAME xsimd)
    target_link_libraries(focal_xsimd INTERFACE focal xsimd)
    target_compile_definitions(focal_xsimd INTERFACE FOCAL_USE_XSIMD=1)
    message(STATUS "focal: SIMD backend (focal::xsimd) with xsimd ${xsimd_VERSION}")
  else()
    message(STATUS "focal: xsimd not found, focal::xsimd not provided (scalar host code only)")
  endif()
endif()

find_package(Eigen3 3.3 QUIET NO_MODULE)
if(TARGET Eigen3::Eigen)
  add_library(focal_eigen INTERFACE)
  add_library(focal::eigen ALIAS focal_eigen)
  set_target_properties(focal_eigen PROPERTIES EXPORT_NAME eigen)
  target_link_libraries(focal_eigen INTERFACE focal Eigen3::Eigen)
endif()

find_package(nlohmann_json 3 QUIET)
if(TARGET nlohmann_json::nlohmann_json)
  add_library(focal_json INTERFACE)
  add_library(focal::json ALIAS focal_json)
  set_target_properties(focal_json PROPERTIES EXPORT_NAME json)
  target_link_libraries(focal_json INTERFACE focal nlohmann_json::nlohmann_json)
endif()

find_package(xtl QUIET)
find_package(xtensor QUIET)
if(TARGET xtensor)
  add_library(focal_xtensor INTERFACE)
  add_library(focal::xtensor ALIAS focal_xtensor)
  set_target_properties(focal_xtensor PROPERTIES EXPORT_NAME xtensor)
  target_link_libraries(focal_xtensor INTERFACE focal xtensor)
endif()
