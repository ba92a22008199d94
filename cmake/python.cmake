# Python extension module tmath._tmath (nanobind), linked against the `tmath`
# shared library target of this build tree.
#
# Included from the top-level CMakeLists.txt when TMATH_PYTHON is ON (the
# default). Skipped with a status message when no Python interpreter with
# nanobind is found, or in sanitizer builds (an ASan-instrumented extension
# cannot be loaded by a plain interpreter).
#
# Interpreter: Python_EXECUTABLE if given, else the repository's .venv, else
# whatever find_package(Python) finds. Under scikit-build-core (`pip install .`)
# SKBUILD is set, the interpreter is the one pip runs, and the module and
# libtmath.so are installed into the wheel's tmath/ package directory.
#
# Developer builds (`make build`): the built module is copied into
# python/tmath/ (git-ignored) so that `PYTHONPATH=python` or the .pth file that
# `make build` writes into .venv finds it next to __init__.py.

if(TMATH_SANITIZE)
  message(STATUS "tmath: Python extension skipped in sanitizer builds")
  return()
endif()

if(NOT SKBUILD AND NOT Python_EXECUTABLE AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/.venv/bin/python)
  set(Python_EXECUTABLE ${CMAKE_CURRENT_SOURCE_DIR}/.venv/bin/python)
endif()
find_package(Python 3.9 COMPONENTS Interpreter Development.Module QUIET)
if(NOT Python_FOUND)
  message(STATUS "tmath: no Python interpreter with development headers; the Python extension is not built")
  return()
endif()

execute_process(
  COMMAND "${Python_EXECUTABLE}" -m nanobind --cmake_dir
  OUTPUT_VARIABLE _tmath_nb_dir
  OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _tmath_nb_rc
  ERROR_QUIET)
if(NOT _tmath_nb_rc EQUAL 0 OR NOT _tmath_nb_dir)
  message(STATUS "tmath: nanobind not found for ${Python_EXECUTABLE}; the Python extension is not built "
                 "(scripts/setup.sh installs it into .venv)")
  return()
endif()
list(APPEND CMAKE_PREFIX_PATH "${_tmath_nb_dir}")
find_package(nanobind CONFIG REQUIRED)
message(STATUS "tmath: Python extension enabled (Python ${Python_VERSION}, nanobind ${nanobind_VERSION})")

file(GLOB TMATH_PY_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/python/src/*.cpp)
# NOMINSIZE: -O2/-O3 instead of nanobind's default -Os (the per-op call overhead matters).
nanobind_add_module(_tmath NB_STATIC NOMINSIZE ${TMATH_PY_SRC})
target_include_directories(_tmath PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/python/src)
target_link_libraries(_tmath PRIVATE tmath)
# The project's warning set (-Werror with TMATH_WERROR, as CI builds). GCC 12 reports
# a false -Wrestrict on std::string concatenation (GCC bug 105329) in convert.cpp.
target_compile_options(_tmath PRIVATE ${TMATH_WARN})
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(_tmath PRIVATE -Wno-restrict)
endif()
set_target_properties(_tmath PROPERTIES
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/python/tmath
  INSTALL_RPATH "$ORIGIN")

# Type stubs: stubgen imports tmath._tmath from the build tree, where an empty
# tmath/__init__.py stands in for the package (the real one adds Python-level
# methods to Tensor; python/stubs/tensor_methods.nbpat gives their stub entries).
# The stubs form a package, tmath/_tmath/{__init__,linalg,random}.pyi, so that the
# submodules are typed too.
set(_tmath_py_out ${CMAKE_BINARY_DIR}/python/tmath)
set(_tmath_stub_pattern ${CMAKE_CURRENT_SOURCE_DIR}/python/stubs/tensor_methods.nbpat)
file(WRITE ${_tmath_py_out}/__init__.py "")
# nanobind >= 2.9.2 writes recursive stubs (a package); older ones one _tmath.pyi, the
# submodules untyped.
if(nanobind_VERSION VERSION_GREATER_EQUAL 2.9.2)
  set(_tmath_stub_package ON)
  set(_tmath_stub_layout RECURSIVE OUTPUT_PATH ${_tmath_py_out}
      OUTPUT ${_tmath_py_out}/_tmath/__init__.pyi ${_tmath_py_out}/_tmath/linalg.pyi
             ${_tmath_py_out}/_tmath/random.pyi)
else()
  set(_tmath_stub_package OFF)
  set(_tmath_stub_layout OUTPUT ${_tmath_py_out}/_tmath.pyi)
endif()
nanobind_add_stub(_tmath_stub
  MODULE tmath._tmath
  ${_tmath_stub_layout}
  PATTERN_FILE ${_tmath_stub_pattern}
  MARKER_FILE ${_tmath_py_out}/py.typed
  PYTHON_PATH ${CMAKE_BINARY_DIR}/python
  DEPENDS _tmath ${_tmath_stub_pattern})

if(SKBUILD)
  install(FILES ${_tmath_py_out}/py.typed DESTINATION tmath)
  if(_tmath_stub_package)
    install(DIRECTORY ${_tmath_py_out}/_tmath DESTINATION tmath FILES_MATCHING PATTERN "*.pyi")
  else()
    install(FILES ${_tmath_py_out}/_tmath.pyi DESTINATION tmath)
  endif()
  # Wheel layout: tmath/__init__.py, tmath/_tmath*.so, tmath/libtmath.so (+ the CUDA plugin when built).
  install(TARGETS _tmath LIBRARY DESTINATION tmath)
  install(TARGETS tmath LIBRARY DESTINATION tmath)
  if(TARGET tmath_cuda)
    install(TARGETS tmath_cuda LIBRARY DESTINATION tmath)
  endif()
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/python/tmath/ DESTINATION tmath
          FILES_MATCHING PATTERN "*.py" PATTERN "*.pyi" PATTERN "py.typed")
else()
  option(TMATH_PYTHON_DEV_COPY "Copy the built extension into python/tmath/ for in-tree imports" ON)
  if(TMATH_PYTHON_DEV_COPY)
    add_custom_command(TARGET _tmath POST_BUILD
      COMMAND ${CMAKE_COMMAND} -E copy_if_different $<TARGET_FILE:_tmath>
              ${CMAKE_CURRENT_SOURCE_DIR}/python/tmath/$<TARGET_FILE_NAME:_tmath>
      COMMENT "Copying $<TARGET_FILE_NAME:_tmath> into python/tmath/")
    if(_tmath_stub_package)
      add_custom_command(TARGET _tmath_stub POST_BUILD
        COMMAND ${CMAKE_COMMAND} -E copy_if_different ${_tmath_py_out}/py.typed
                ${CMAKE_CURRENT_SOURCE_DIR}/python/tmath/
        COMMAND ${CMAKE_COMMAND} -E copy_directory ${_tmath_py_out}/_tmath
                ${CMAKE_CURRENT_SOURCE_DIR}/python/tmath/_tmath
        COMMAND ${CMAKE_COMMAND} -E rm -f ${CMAKE_CURRENT_SOURCE_DIR}/python/tmath/_tmath.pyi)
    else()
      add_custom_command(TARGET _tmath_stub POST_BUILD
        COMMAND ${CMAKE_COMMAND} -E copy_if_different ${_tmath_py_out}/_tmath.pyi
                ${_tmath_py_out}/py.typed ${CMAKE_CURRENT_SOURCE_DIR}/python/tmath/)
    endif()
  endif()
endif()
