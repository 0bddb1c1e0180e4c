# SPDX-License-Identifier: GPL-3.0-or-later
# folio-cuda-ops-test: the CUDA kernels against CPU references at the real model's sizes. Qt-free;
# without a CUDA device it prints "SKIP: no CUDA device" and exits 77, which CTest reports as
# skipped. The FOLIO_TESTS=OFF build (the GPU machine) defines the same target in
# inference/CMakeLists.txt instead.
if(FOLIO_HAVE_CUDA)
    add_executable(folio-cuda-ops-test cuda/cuda_ops_test.cpp)
    target_link_libraries(folio-cuda-ops-test PRIVATE folio_inference folio_warnings)
    add_test(NAME cuda_ops COMMAND folio-cuda-ops-test)
    # The cpu_parity section compares against the CPU reference on the golden `small` model.
    set_tests_properties(cuda_ops PROPERTIES SKIP_RETURN_CODE 77
                                             ENVIRONMENT "FOLIO_GOLDEN_DIR=${FOLIO_GOLDEN_DIR}")
endif()
