# Unity build of tmath_tests (TMATH_UNITY_TESTS, ON in the asan-ubsan preset).
#
# Every test file parses gtest, the standard library and the tmath headers and
# compiles the inline helpers of tests/test_util.h again: 3.7 s of CPU per file under
# ASan (-O1 -g1) before any test code, and the templates the files share are compiled
# once per file. In batches that is paid once per batch (backend_ops, dtype and random
# tests: 55.4 s of CPU as three files, 39.8 s as one batch). The batches are listed
# here by hand (UNITY_BUILD_MODE GROUP):
# - files whose anonymous-namespace helpers share a name cannot share a batch
#   (gradcheck_test with backend_ops_test, cuda_test and linalg_grad_test, which
#   also clashes with cuda_test; linalg_test with linalg_decomp_test and ops_test);
# - the batches are of about equal line count; their CPU times differ (-O1 -g1:
#   48, 97, 72 and 89 s), which two cores still finish at about the same time.
# A test file named in no batch (a new one) is compiled on its own as usual.

set(_tmath_unity_groups
  "backend_ops/backend_ops_test.cpp,core/dtype_test.cpp,core/random_test.cpp,mlx/mlx_test.cpp"
  "core/ops_test.cpp,core/tensor_test.cpp,core/backend_test.cpp,autodiff/linalg_grad_test.cpp"
  "core/linalg_test.cpp,cuda/cuda_test.cpp,core/linalg_accuracy_test.cpp"
  "autodiff/transforms_test.cpp,autodiff/gradcheck_test.cpp,jit/fusion_test.cpp,core/linalg_decomp_test.cpp,core/errors_test.cpp,core/philox_test.cpp,core/memory_test.cpp,core/thread_test.cpp")

set_target_properties(tmath_tests PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
set(_tmath_unity_n 0)
foreach(_group IN LISTS _tmath_unity_groups)
  math(EXPR _tmath_unity_n "${_tmath_unity_n} + 1")
  string(REPLACE "," ";" _files "${_group}")
  foreach(_f IN LISTS _files)
    set(_path ${CMAKE_CURRENT_SOURCE_DIR}/tests/${_f})
    if(_path IN_LIST TMATH_TEST_SRC)
      set_source_files_properties(${_path} PROPERTIES UNITY_GROUP tests${_tmath_unity_n})
    endif()
  endforeach()
endforeach()
# GCC warns when a test class derives from a fixture in an anonymous namespace that
# is not in the main file; in a batch every test file is an included one.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(tmath_tests PRIVATE -Wno-subobject-linkage)
endif()
