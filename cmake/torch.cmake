# LibTorch backends ("torch" on the cpu device, "torch:cuda" on cuda devices), built as
# the plugin libtmath_torch.so next to libtmath.so.
#
# libtmath never links LibTorch: src/core/plugin_loader.cpp dlopens the plugin when it is
# asked for (tmath::load_backend("torch"), TMATH_BACKEND=torch, TMATH_TORCH=1), so one
# build runs with and without LibTorch and programs that do not use it do not pay for
# loading it. LibTorch comes from, in order: TMATH_TORCH_ROOT (a directory with include/
# and lib/, e.g. an unpacked libtorch or a PyTorch package), the PyTorch package of
# TMATH_TORCH_PYTHON or python3 (its CUDA build gives "torch:cuda"), or the system's
# LibTorch (Debian's libtorch-dev, CPU). Built when found (TMATH_TORCH=AUTO, the
# default), required with ON, skipped with OFF.

set(TMATH_TORCH AUTO CACHE STRING "Build the LibTorch backend plugin (AUTO, ON, OFF)")
set_property(CACHE TMATH_TORCH PROPERTY STRINGS AUTO ON OFF)
set(TMATH_TORCH_ROOT "" CACHE PATH "LibTorch directory (include/, lib/)")
set(TMATH_TORCH_PYTHON "${CMAKE_CURRENT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose PyTorch package provides LibTorch")

if(TMATH_TORCH STREQUAL "OFF")
  message(STATUS "tmath: LibTorch backend disabled (TMATH_TORCH=OFF)")
  return()
endif()
# LibTorch is not instrumented: the sanitizer build leaves the plugin out.
if(TMATH_SANITIZE AND NOT TMATH_TORCH STREQUAL "ON")
  message(STATUS "tmath: LibTorch backend left out of the sanitizer build")
  return()
endif()

set(_tt_root "${TMATH_TORCH_ROOT}")
set(_tt_abi 1)
if(NOT _tt_root)
  foreach(py "${TMATH_TORCH_PYTHON}" python3)
    if(_tt_root)
      break()
    endif()
    if(NOT IS_ABSOLUTE "${py}")
      find_program(_tt_py ${py})
      set(py "${_tt_py}")
      unset(_tt_py CACHE)
    endif()
    if(NOT py OR NOT EXISTS "${py}")
      continue()
    endif()
    execute_process(
      COMMAND "${py}" -c "import os, torch; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
      OUTPUT_VARIABLE _tt_out ERROR_QUIET RESULT_VARIABLE _tt_rc TIMEOUT 120)
    if(_tt_rc EQUAL 0)
      string(STRIP "${_tt_out}" _tt_out)
      string(REPLACE "\n" ";" _tt_out "${_tt_out}")
      list(GET _tt_out 0 _tt_root)
      list(GET _tt_out 1 _tt_abi)
    endif()
  endforeach()
endif()

if(_tt_root)
  set(_tt_inc "${_tt_root}/include")
  set(_tt_libdir "${_tt_root}/lib")
  find_library(TMATH_TORCH_CPU_LIB torch_cpu PATHS "${_tt_libdir}" NO_DEFAULT_PATH)
  find_library(TMATH_C10_LIB c10 PATHS "${_tt_libdir}" NO_DEFAULT_PATH)
  find_library(TMATH_TORCH_CUDA_LIB torch_cuda PATHS "${_tt_libdir}" NO_DEFAULT_PATH)
  find_library(TMATH_C10_CUDA_LIB c10_cuda PATHS "${_tt_libdir}" NO_DEFAULT_PATH)
else()
  find_path(_tt_inc ATen/ATen.h)
  find_library(TMATH_TORCH_CPU_LIB torch_cpu)
  find_library(TMATH_C10_LIB c10)
  set(TMATH_TORCH_CUDA_LIB TMATH_TORCH_CUDA_LIB-NOTFOUND)
endif()

if(NOT _tt_inc OR NOT EXISTS "${_tt_inc}/ATen/ATen.h" OR NOT TMATH_TORCH_CPU_LIB OR NOT TMATH_C10_LIB
   OR NOT _tt_abi EQUAL 1)
  set(_tt_why "LibTorch not found (apt-get install libtorch-dev, or set TMATH_TORCH_ROOT)")
  if(NOT _tt_abi EQUAL 1)
    set(_tt_why "LibTorch in ${_tt_root} uses the pre-C++11 string ABI, the engine the C++11 one")
  endif()
  tmath_plugin_unavailable(TMATH_TORCH torch "${_tt_why}")
endif()
get_filename_component(_tt_libdir "${TMATH_TORCH_CPU_LIB}" DIRECTORY)

# One translation unit: ATen's headers cost ~10 s of CPU per file that includes them.
add_library(tmath_torch SHARED ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/torch/torch_backend.cpp)
target_include_directories(tmath_torch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_include_directories(tmath_torch SYSTEM PRIVATE "${_tt_inc}" "${_tt_inc}/torch/csrc/api/include")
target_link_libraries(tmath_torch PRIVATE tmath ${TMATH_TORCH_CPU_LIB} ${TMATH_C10_LIB})
set(_tt_what "CPU")
if(TMATH_TORCH_CUDA_LIB AND TMATH_C10_CUDA_LIB)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    target_compile_definitions(tmath_torch PRIVATE TMATH_TORCH_CUDA=1)
    target_include_directories(tmath_torch SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
    target_link_libraries(tmath_torch PRIVATE ${TMATH_TORCH_CUDA_LIB} ${TMATH_C10_CUDA_LIB})
    set(_tt_what "CPU and CUDA")
  endif()
endif()
target_compile_options(tmath_torch PRIVATE ${TMATH_WARN})
target_compile_definitions(tmath_torch PRIVATE TMATH_VERSION="${PROJECT_VERSION}")
# Next to libtmath.so, where the loader looks for it; LibTorch found through the run path.
set_target_properties(tmath_torch PROPERTIES
  LIBRARY_OUTPUT_DIRECTORY $<TARGET_FILE_DIR:tmath>
  BUILD_RPATH "${_tt_libdir}"
  INSTALL_RPATH "${_tt_libdir}")
message(STATUS "tmath: torch backend plugin enabled (LibTorch ${_tt_what} in ${_tt_libdir})")

tmath_plugin_dependencies(tmath_torch)
