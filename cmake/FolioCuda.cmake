# SPDX-License-Identifier: GPL-3.0-or-later
# Decides whether the CUDA backend is built. AUTO builds it when a CUDA compiler is found; ON
# requires one. The default is one architecture, Hopper's arch-specific sm_90a (its wgmma
# kernels), which keeps CI fast; release builds widen CMAKE_CUDA_ARCHITECTURES (for example
# "80-real;86-real;89-real;90a-real;90-virtual"), and the portable kernels serve the others.
set(FOLIO_HAVE_CUDA OFF)
if(NOT FOLIO_CUDA STREQUAL "OFF")
    if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
        set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
            set(CMAKE_CUDA_ARCHITECTURES 90a)
        endif()
        # CMake 3.25 does not know nvcc's C++20 flag; the kernels are C++17.
        set(CMAKE_CUDA_STANDARD 17)
        set(CMAKE_CUDA_STANDARD_REQUIRED ON)
        enable_language(CUDA)
        find_package(CUDAToolkit REQUIRED)
        set(FOLIO_HAVE_CUDA ON)
    elseif(FOLIO_CUDA STREQUAL "ON")
        message(FATAL_ERROR "FOLIO_CUDA=ON but no CUDA compiler was found")
    endif()
endif()
