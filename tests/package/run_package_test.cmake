# run_package_test.cmake: one packaging test, run by ctest as
#   cmake -DFOCAL_PACKAGE_SETTINGS=<build>/tests/package/package_test_settings.cmake
#         -DFOCAL_PACKAGE_MODE=find_package|add_subdirectory -P run_package_test.cmake
#
# find_package:      configure focal's source tree alone (tests, benchmarks, examples off, install
#                    on), install it to a prefix, configure and build consumer/ against that
#                    prefix, run the consumer.
# add_subdirectory:  configure and build subdirectory/ (which add_subdirectory()s focal's source
#                    tree and builds consumer/main.cpp), run the consumer.
# Every step runs in a fresh tree under the work directory; the first failing step ends the test
# with its command and full output.
cmake_minimum_required(VERSION 3.25)

if(NOT FOCAL_PACKAGE_SETTINGS OR NOT EXISTS "${FOCAL_PACKAGE_SETTINGS}")
  message(FATAL_ERROR "FOCAL_PACKAGE_SETTINGS must name the settings file written by tests/package/CMakeLists.txt")
endif()
include("${FOCAL_PACKAGE_SETTINGS}")
if(NOT FOCAL_PACKAGE_MODE MATCHES "^(find_package|add_subdirectory)$")
  message(FATAL_ERROR "FOCAL_PACKAGE_MODE must be find_package or add_subdirectory, got '${FOCAL_PACKAGE_MODE}'")
endif()

set(work "${FOCAL_PACKAGE_WORK_DIR}/${FOCAL_PACKAGE_MODE}")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

set(generator_args -G "${FOCAL_PACKAGE_GENERATOR}")
if(FOCAL_PACKAGE_GENERATOR_PLATFORM)
  list(APPEND generator_args -A "${FOCAL_PACKAGE_GENERATOR_PLATFORM}")
endif()
if(FOCAL_PACKAGE_GENERATOR_TOOLSET)
  list(APPEND generator_args -T "${FOCAL_PACKAGE_GENERATOR_TOOLSET}")
endif()
set(config Release)

# step(<name> <command>...): runs the command, prints how long it took, stops the test on failure.
# The output is kept in step_output for the caller.
function(step name)
  string(TIMESTAMP start "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(TIMESTAMP stop "%s")
  math(EXPR seconds "${stop} - ${start}")
  if(NOT rc STREQUAL "0")
    list(JOIN ARGN " " command)
    # NOTICE prints the output as it is (FATAL_ERROR would re-wrap compiler messages).
    message(NOTICE "---- '${name}' failed: ${command}\n${out}\n---- end of the output of '${name}'")
    message(FATAL_ERROR "package_${FOCAL_PACKAGE_MODE}: step '${name}' failed (exit status ${rc}) after ${seconds} s")
  endif()
  message(STATUS "${name}: ok (${seconds} s)")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# run_consumer(<build dir>): runs the focal_consumer the project in <build dir> built.
function(run_consumer build_dir)
  set(path_file "${build_dir}/focal_consumer_${config}.path")
  if(NOT EXISTS "${path_file}")
    message(FATAL_ERROR "package_${FOCAL_PACKAGE_MODE}: ${path_file} missing: the consumer project did not say where "
                        "focal_consumer is")
  endif()
  file(READ "${path_file}" exe)
  string(STRIP "${exe}" exe)
  step("run consumer" "${exe}")
  message(STATUS "consumer output:\n${step_output}")
endfunction()

if(FOCAL_PACKAGE_MODE STREQUAL "find_package")
  set(focal_build "${work}/focal-build")
  set(prefix "${work}/prefix")
  set(consumer_build "${work}/consumer-build")

  step("configure focal"
       ${CMAKE_COMMAND} -S "${FOCAL_SOURCE_DIR}" -B "${focal_build}" ${generator_args}
       -C "${FOCAL_PACKAGE_INIT_CACHE}" -DCMAKE_BUILD_TYPE=${config} -DCMAKE_INSTALL_PREFIX=${prefix}
       -DFOCAL_BUILD_TESTS=OFF -DFOCAL_BUILD_BENCHMARKS=OFF -DFOCAL_BUILD_EXAMPLES=OFF -DFOCAL_INSTALL=ON)
  step("build focal" ${CMAKE_COMMAND} --build "${focal_build}" --config ${config} -j2)
  step("install focal" ${CMAKE_COMMAND} --install "${focal_build}" --config ${config} --prefix "${prefix}")

  # What an installed focal must contain.
  file(GLOB_RECURSE config_files "${prefix}/*Config.cmake")
  list(FILTER config_files INCLUDE REGEX "/focalConfig\\.cmake$")
  if(NOT config_files)
    message(FATAL_ERROR "package_find_package: no focalConfig.cmake installed under ${prefix}\n${step_output}")
  endif()
  list(GET config_files 0 config_file)
  get_filename_component(config_dir "${config_file}" DIRECTORY)
  foreach(file include/focal/retinanet.hpp include/focal/core/view.hpp include/focal/adapt/eigen.hpp include/focal/core/labels.hpp
               include/focal/loss/loss_output.hpp include/focal/retinanet/postprocess.hpp include/focal/box/overlap.hpp)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "package_find_package: ${prefix}/${file} was not installed")
    endif()
  endforeach()
  foreach(file focalConfigVersion.cmake focalTargets.cmake focal_eigenTargets.cmake focal_xtensorTargets.cmake)
    if(NOT EXISTS "${config_dir}/${file}")
      message(FATAL_ERROR "package_find_package: ${config_dir}/${file} was not installed")
    endif()
  endforeach()
  message(STATUS "installed package: ${config_dir}")

  # The consumer starts from the same cache, with the install prefix searched first.
  set(consumer_init "${work}/consumer_init_cache.cmake")
  file(WRITE "${consumer_init}" "include([==[${FOCAL_PACKAGE_INIT_CACHE}]==])
set(CMAKE_PREFIX_PATH [==[${prefix}]==] \${CMAKE_PREFIX_PATH} CACHE STRING \"\" FORCE)
set(FOCAL_EXPECTED_PREFIX [==[${prefix}]==] CACHE PATH \"\")
")
  step("configure consumer"
       ${CMAKE_COMMAND} -S "${FOCAL_PACKAGE_TEST_DIR}/consumer" -B "${consumer_build}" ${generator_args}
       -C "${consumer_init}" -DCMAKE_BUILD_TYPE=${config})
  step("build consumer" ${CMAKE_COMMAND} --build "${consumer_build}" --config ${config} -j2)
  run_consumer("${consumer_build}")
else()
  set(build "${work}/build")
  step("configure subdirectory project"
       ${CMAKE_COMMAND} -S "${FOCAL_PACKAGE_TEST_DIR}/subdirectory" -B "${build}" ${generator_args}
       -C "${FOCAL_PACKAGE_INIT_CACHE}" -DCMAKE_BUILD_TYPE=${config} "-DFOCAL_SOURCE_DIR=${FOCAL_SOURCE_DIR}")
  step("build subdirectory project" ${CMAKE_COMMAND} --build "${build}" --config ${config} -j2)
  run_consumer("${build}")
endif()
