# MLX backend, built as the plugin libtmath_mlx.so next to libtmath.so.
#
# libtmath never links MLX: src/core/plugin_loader.cpp dlopens this plugin at
# start-up, so one build runs with and without MLX. MLX (libmlx, its headers and
# its CMake config) comes from the `mlx` Python package (on Linux `mlx[cpu]`,
# installed into .venv by scripts/setup.sh); CMake asks `python -m mlx --cmake-dir`
# where it is. Built when found (TMATH_MLX=AUTO, the default), required with ON,
# skipped with OFF. MLX_DIR or TMATH_MLX_PYTHON point at another installation.

set(TMATH_MLX AUTO CACHE STRING "Build the MLX backend plugin (AUTO, ON, OFF)")
set_property(CACHE TMATH_MLX PROPERTY STRINGS AUTO ON OFF)
set(TMATH_MLX_PYTHON "${CMAKE_CURRENT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose `-m mlx --cmake-dir` locates MLX")

if(TMATH_MLX STREQUAL "OFF")
  message(STATUS "tmath: MLX backend disabled (TMATH_MLX=OFF)")
  return()
endif()
# libmlx is not instrumented: the sanitizer build leaves the plugin out (the release build
# runs the mlx tests).
if(TMATH_SANITIZE AND NOT TMATH_MLX STREQUAL "ON")
  message(STATUS "tmath: MLX backend left out of the sanitizer build")
  return()
endif()

set(_tmath_mlx_prefix "")
if(EXISTS "${TMATH_MLX_PYTHON}")
  execute_process(COMMAND "${TMATH_MLX_PYTHON}" -m mlx --cmake-dir
                  OUTPUT_VARIABLE _tmath_mlx_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE _tmath_mlx_rc TIMEOUT 60)
  if(NOT _tmath_mlx_rc EQUAL 0)
    set(_tmath_mlx_prefix "")
  endif()
endif()
find_package(MLX CONFIG QUIET PATHS ${_tmath_mlx_prefix} NO_DEFAULT_PATH)
if(NOT MLX_FOUND)
  find_package(MLX CONFIG QUIET)  # MLX_DIR or a system installation
endif()
if(NOT MLX_FOUND OR NOT TARGET mlx)
  if(TMATH_MLX STREQUAL "ON")
    message(FATAL_ERROR "tmath: TMATH_MLX=ON but MLX was not found (pip install 'mlx[cpu]' "
                        "into .venv, or set MLX_DIR / TMATH_MLX_PYTHON)")
  endif()
  message(STATUS "tmath: MLX not found (no `mlx` in ${TMATH_MLX_PYTHON}); the mlx backend "
                 "is not built")
  return()
endif()
get_target_property(_tmath_mlx_lib mlx IMPORTED_LOCATION_RELEASE)
if(NOT _tmath_mlx_lib)
  get_target_property(_tmath_mlx_lib mlx IMPORTED_LOCATION)
endif()
get_filename_component(_tmath_mlx_libdir "${_tmath_mlx_lib}" DIRECTORY)
message(STATUS "tmath: MLX backend plugin enabled (MLX ${MLX_VERSION} in ${_tmath_mlx_libdir})")

# One translation unit: MLX's headers cost ~3 s of CPU per file that includes them.
file(GLOB TMATH_MLX_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/mlx/*.cpp)
add_library(tmath_mlx SHARED ${TMATH_MLX_SRC})
target_include_directories(tmath_mlx PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_link_libraries(tmath_mlx PRIVATE tmath mlx)
target_compile_options(tmath_mlx PRIVATE ${TMATH_WARN})
target_compile_definitions(tmath_mlx PRIVATE TMATH_VERSION="${PROJECT_VERSION}")
# Next to libtmath.so, where the loader looks for it; libmlx found through the run path.
set_target_properties(tmath_mlx PROPERTIES
  LIBRARY_OUTPUT_DIRECTORY $<TARGET_FILE_DIR:tmath>
  BUILD_RPATH "${_tmath_mlx_libdir}"
  INSTALL_RPATH "${_tmath_mlx_libdir}")

tmath_plugin_dependencies(tmath_mlx)
