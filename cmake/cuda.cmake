# Native CUDA backend, built as the plugin libtmath_cuda.so next to libtmath.so.
#
# libtmath never links CUDA: src/core/plugin_loader.cpp dlopens this plugin at
# start-up, so one build runs with and without a GPU. Built when CMake finds the
# CUDA toolkit (TMATH_CUDA=AUTO, the default), required with ON, skipped with OFF.
# Device code is compiled at run time by NVRTC; no nvcc step. libcuda is linked
# from the toolkit's stub library so the build needs no driver.

set(TMATH_CUDA AUTO CACHE STRING "Build the CUDA backend plugin (AUTO, ON, OFF)")
set_property(CACHE TMATH_CUDA PROPERTY STRINGS AUTO ON OFF)

if(TMATH_CUDA STREQUAL "OFF")
  message(STATUS "tmath: CUDA backend disabled (TMATH_CUDA=OFF)")
  return()
endif()

if(TMATH_CUDA STREQUAL "ON")
  find_package(CUDAToolkit REQUIRED)
else()
  find_package(CUDAToolkit QUIET)
endif()
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cuda_driver OR NOT TARGET CUDA::nvrtc)
  message(STATUS "tmath: CUDA toolkit not found; the cuda backend is not built")
  return()
endif()

# cuBLAS, cuBLASLt and cuSOLVER are opened on first use (src/backend/cuda/cuda_libs.cpp),
# not linked: together they cost a process ~340 MB of reads from a cold disk and tens of
# milliseconds of static initialisation at start-up. The build records their sonames.
function(_tmath_cuda_soname name out)
  file(GLOB _cands "${CUDAToolkit_LIBRARY_DIR}/lib${name}.so.*")
  set(_found "")
  foreach(_f IN LISTS _cands)
    get_filename_component(_b "${_f}" NAME)
    if(_b MATCHES "^lib${name}\\.so\\.[0-9]+$")
      set(_found "${_b}")
    endif()
  endforeach()
  set(${out} "${_found}" PARENT_SCOPE)
endfunction()
_tmath_cuda_soname(cublas _tmath_cublas_so)
_tmath_cuda_soname(cublasLt _tmath_cublaslt_so)
_tmath_cuda_soname(cusolver _tmath_cusolver_so)
if(NOT _tmath_cublas_so OR NOT _tmath_cublaslt_so OR NOT _tmath_cusolver_so)
  tmath_plugin_unavailable(TMATH_CUDA cuda
    "libcublas, libcublasLt or libcusolver (.so.<major>) not found in ${CUDAToolkit_LIBRARY_DIR}")
endif()
message(STATUS "tmath: CUDA backend plugin enabled (CUDA ${CUDAToolkit_VERSION}; opened on "
               "first use: ${_tmath_cublas_so}, ${_tmath_cublaslt_so}, ${_tmath_cusolver_so})")

# src/core/philox.h is compiled into the random kernels by NVRTC: embed its text.
set(_tmath_cuda_gen ${CMAKE_CURRENT_BINARY_DIR}/tmath_cuda_gen)
file(READ ${CMAKE_CURRENT_SOURCE_DIR}/src/core/philox.h _tmath_philox)
file(CONFIGURE OUTPUT ${_tmath_cuda_gen}/philox_source.inc
     CONTENT "R\"tmath_philox(@_tmath_philox@)tmath_philox\"\n" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_CURRENT_SOURCE_DIR}/src/core/philox.h)

file(GLOB TMATH_CUDA_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/*.cpp)
add_library(tmath_cuda SHARED ${TMATH_CUDA_SRC})
target_include_directories(tmath_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src ${_tmath_cuda_gen})
target_link_libraries(tmath_cuda PRIVATE tmath CUDA::cudart CUDA::nvrtc CUDA::cuda_driver
                                         ${CMAKE_DL_LIBS})
target_compile_definitions(tmath_cuda PRIVATE
  TMATH_CUBLAS_SONAME="${_tmath_cublas_so}" TMATH_CUBLASLT_SONAME="${_tmath_cublaslt_so}"
  TMATH_CUSOLVER_SONAME="${_tmath_cusolver_so}" TMATH_CUDA_LIBDIR="${CUDAToolkit_LIBRARY_DIR}")
# Every symbol resolved at link time: a cuBLAS/cuSOLVER call that bypasses cuda_libs.h
# fails the build instead of the first run.
target_link_options(tmath_cuda PRIVATE "LINKER:--no-undefined")
target_compile_options(tmath_cuda PRIVATE ${TMATH_WARN})
target_compile_definitions(tmath_cuda PRIVATE TMATH_VERSION="${PROJECT_VERSION}")
# GCC 12 reports a false -Wrestrict on std::string concatenation at -O2/-O3 (GCC bug
# 105329); the code generator and the error messages are string concatenation.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(tmath_cuda PRIVATE -Wno-restrict)
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/codegen.cpp
                              PROPERTIES COMPILE_OPTIONS "-Wno-restrict")
endif()
# Next to libtmath.so, where the loader looks for it. The run path holds the
# toolkit's library directory only: never the stub libcuda's directory, which
# would shadow the driver's libcuda on a GPU machine.
set_target_properties(tmath_cuda PROPERTIES
  LIBRARY_OUTPUT_DIRECTORY $<TARGET_FILE_DIR:tmath>
  SKIP_BUILD_RPATH ON
  INSTALL_RPATH "${CUDAToolkit_LIBRARY_DIR}")
target_link_options(tmath_cuda PRIVATE "LINKER:-rpath,${CUDAToolkit_LIBRARY_DIR}")

# CI has no GPU: this check compiles every kernel program the backend can generate
# with NVRTC (no driver needed) and fails on any compile error. The test emits PTX
# (front end only, about half the time); `tmath_cuda_codegen_check sm_90` also
# runs ptxas on everything.
add_executable(tmath_cuda_codegen_check
  ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/tools/nvrtc_check.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/codegen.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/linalg_kernels.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/nvrtc.cpp)
target_include_directories(tmath_cuda_codegen_check PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src
                           ${_tmath_cuda_gen})
target_include_directories(tmath_cuda_codegen_check SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
# libnvrtc only: CUDA::nvrtc also drags in the driver stub (libcuda.so), which a machine
# without a driver cannot load, and the sanitizer build keeps it as a needed library.
target_link_libraries(tmath_cuda_codegen_check PRIVATE tmath $<TARGET_FILE:CUDA::nvrtc>
                      Threads::Threads)
target_compile_options(tmath_cuda_codegen_check PRIVATE ${TMATH_WARN})

# Programs that use the engine load the plugin at run time: build it with them.
function(_tmath_cuda_add_dependencies)
  _tmath_plugin_dependencies_now(tmath_cuda)
  # The sanitizer build skips it: the check exercises NVRTC, not engine code, and the
  # release build in the same CI run already compiles every program.
  if(TARGET tmath_tests AND NOT TMATH_SANITIZE)
    add_dependencies(tmath_tests tmath_cuda_codegen_check)
    add_test(NAME CudaCodegen.EveryProgramCompiles COMMAND tmath_cuda_codegen_check compute_90)
    # NVRTC keeps allocations alive for the process; that is not a leak of ours.
    # COST: the longest test by far (about 160 s of CPU on one thread) is defined after
    # the discovered gtest tests; without it a clean build tree's `ctest -j` starts it last
    # and it runs alone at the end. With it ctest starts it first, beside the others.
    set_tests_properties(CudaCodegen.EveryProgramCompiles PROPERTIES
                         ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0" TIMEOUT 900 COST 10000)
  endif()
endfunction()
cmake_language(DEFER CALL _tmath_cuda_add_dependencies)
