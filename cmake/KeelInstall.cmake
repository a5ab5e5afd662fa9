# Installs the layer libraries, their headers and a CMake package so that
# another project can do find_package(keel) and link keel::keel.
include(CMakePackageConfigHelpers)

get_property(_keel_layers GLOBAL PROPERTY KEEL_LAYER_TARGETS)
add_library(keel INTERFACE)
add_library(keel::keel ALIAS keel)
target_link_libraries(keel INTERFACE ${_keel_layers})

install(TARGETS ${_keel_layers} keel EXPORT keelTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION include)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/keel/ DESTINATION include/keel
  FILES_MATCHING PATTERN "*.h"
  PATTERN "*_test*" EXCLUDE
  PATTERN "testing" EXCLUDE)
install(EXPORT keelTargets NAMESPACE keel:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/keel)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/keelConfig.cmake.in
  ${PROJECT_BINARY_DIR}/keelConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/keel
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/keelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/keelConfig.cmake ${PROJECT_BINARY_DIR}/keelConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/KeelProtocol.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/keel)
