# Install the headers and export the targets so that find_package(focal) works for an installed
# copy. Each optional target has its own export file, loaded only when its dependency is found.
set(FOCAL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/focal)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/focal DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS focal EXPORT focalTargets)
install(EXPORT focalTargets NAMESPACE focal:: DESTINATION ${FOCAL_CMAKE_DIR})
foreach(part xsimd eigen xtensor json)
  if(TARGET focal_${part})
    install(TARGETS focal_${part} EXPORT focal_${part}Targets)
    install(EXPORT focal_${part}Targets NAMESPACE focal:: DESTINATION ${FOCAL_CMAKE_DIR})
  endif()
endforeach()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/focalConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/focalConfig.cmake INSTALL_DESTINATION ${FOCAL_CMAKE_DIR})
# 0.x: only the same minor version is compatible; the library is header-only and has no ABI.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/focalConfigVersion.cmake COMPATIBILITY SameMinorVersion
                                 ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/focalConfig.cmake ${PROJECT_BINARY_DIR}/focalConfigVersion.cmake
        DESTINATION ${FOCAL_CMAKE_DIR})
