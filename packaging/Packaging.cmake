# SPDX-License-Identifier: GPL-3.0-or-later
# Installation of the desktop integration files and the Debian package (CPack, DEB generator).
# Included last from the top-level CMakeLists.txt, so every executable target is known here.
#
#   cmake -S . -B build-pkg -G Ninja -DFOLIO_CUDA=OFF -DFOLIO_TESTS=OFF
#   cmake --build build-pkg && (cd build-pkg && cpack -G DEB)   # -> build-pkg/folio_0.1.0-1_amd64.deb
#
# packaging/test-package.sh does that with Debian's hardening flags, then runs lintian, installs
# the package, runs the installed tools and starts the application from its menu entry.
#
# One binary package, `folio`: the programs that this build installs (FOLIO_PROGRAMS below:
# folio, folio-cli, folio-engine, folio-snapshot-bench; folio-bench only with the CUDA
# backend), each with a manual page from packaging/man/, the demo model (inference/CMakeLists.txt
# generates and installs it), and for the desktop application its menu entry, AppStream metadata
# and icons. Dependencies come from dpkg-shlibdeps, plus what is loaded at run time (below).

set(FOLIO_PACKAGE_MAINTAINER "Folio maintainers <maintainers@users.noreply.h-seed-61ddd300.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(FOLIO_DEB_RELEASE 1 CACHE STRING "Debian revision of the package (the part after the '-')")

set(_folio_res ${PROJECT_SOURCE_DIR}/resources)
set(_folio_pkg ${PROJECT_SOURCE_DIR}/packaging)
set(_folio_doc share/doc/folio)

# --- Desktop integration (only with the desktop application) -------------------------------
if(TARGET folio)
    install(FILES ${_folio_res}/folio.desktop DESTINATION share/applications)
    install(FILES ${_folio_res}/io.github.folio.Folio.metainfo.xml DESTINATION share/metainfo)
    install(FILES ${_folio_res}/icons/folio.svg DESTINATION share/icons/hicolor/scalable/apps)
    # The PNG sizes are rendered from the SVG at build time, never committed.
    find_program(FOLIO_RSVG_CONVERT rsvg-convert)
    if(FOLIO_RSVG_CONVERT)
        set(_folio_pngs)
        foreach(size 16 32 48 64 128 256)
            set(_png ${CMAKE_BINARY_DIR}/icons/${size}x${size}/folio.png)
            add_custom_command(
                OUTPUT ${_png}
                COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/icons/${size}x${size}
                COMMAND ${FOLIO_RSVG_CONVERT} --width=${size} --height=${size} --output=${_png}
                        ${_folio_res}/icons/folio.svg
                DEPENDS ${_folio_res}/icons/folio.svg
                COMMENT "Rendering the ${size}x${size} icon"
                VERBATIM)
            list(APPEND _folio_pngs ${_png})
            install(FILES ${_png} DESTINATION share/icons/hicolor/${size}x${size}/apps)
        endforeach()
        add_custom_target(folio-icons ALL DEPENDS ${_folio_pngs})
    else()
        message(STATUS "Folio: rsvg-convert not found, only the SVG icon is installed "
                       "(apt-get install librsvg2-bin)")
    endif()
endif()

# --- Documentation Debian wants: copyright (DEP-5), changelog, manual pages -----------------
install(FILES ${_folio_pkg}/copyright DESTINATION ${_folio_doc})

# The changelog's newest entry must name the version being packaged.
set(_folio_deb_version ${PROJECT_VERSION}-${FOLIO_DEB_RELEASE})
file(STRINGS ${_folio_pkg}/changelog.Debian _folio_changelog_top LIMIT_COUNT 1)
if(NOT _folio_changelog_top MATCHES "^folio \\(${_folio_deb_version}\\) ")
    message(FATAL_ERROR "packaging/changelog.Debian starts with \"${_folio_changelog_top}\"; "
                        "add an entry for ${_folio_deb_version}")
endif()

# Compressed with gzip -9n (no name, no time stamp), as Debian policy and lintian want.
find_program(FOLIO_GZIP gzip REQUIRED)
set(_folio_gz ${CMAKE_BINARY_DIR}/packaging)
set(_folio_gz_outputs)
function(folio_gzip source)
    get_filename_component(name ${source} NAME)
    add_custom_command(
        OUTPUT ${_folio_gz}/${name}.gz
        COMMAND ${CMAKE_COMMAND} -E copy ${source} ${_folio_gz}/${name}
        COMMAND ${FOLIO_GZIP} -9nf ${_folio_gz}/${name}
        DEPENDS ${source}
        VERBATIM)
endfunction()
folio_gzip(${_folio_pkg}/changelog.Debian)
list(APPEND _folio_gz_outputs ${_folio_gz}/changelog.Debian.gz)
install(FILES ${_folio_gz}/changelog.Debian.gz DESTINATION ${_folio_doc})
# Every program the project installs has a manual page here.
set(FOLIO_PROGRAMS folio folio-cli folio-engine folio-bench folio-snapshot-bench)
foreach(tool ${FOLIO_PROGRAMS})
    if(TARGET ${tool})
        folio_gzip(${_folio_pkg}/man/${tool}.1)
        list(APPEND _folio_gz_outputs ${_folio_gz}/${tool}.1.gz)
        install(FILES ${_folio_gz}/${tool}.1.gz DESTINATION share/man/man1)
    endif()
endforeach()
add_custom_target(folio-package-docs ALL DEPENDS ${_folio_gz_outputs})

# A stripped install (cpack with CPACK_STRIP_FILES, `cmake --install --strip`) also drops the
# compiler's .comment and .note sections, as Debian's dh_strip does. Runs after every other
# install rule (CMP0082): this file is included last.
if(CMAKE_OBJCOPY)
    set(_folio_strip_list)
    foreach(tool ${FOLIO_PROGRAMS})
        if(TARGET ${tool})
            list(APPEND _folio_strip_list ${tool})
        endif()
    endforeach()
    install(CODE "
        if(CMAKE_INSTALL_DO_STRIP)
            foreach(tool ${_folio_strip_list})
                execute_process(COMMAND \"${CMAKE_OBJCOPY}\" --remove-section=.comment
                    --remove-section=.note \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/\${tool}\"
                    COMMAND_ERROR_IS_FATAL ANY)
            endforeach()
        endif()")
endif()

# --- The Debian package ----------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME folio)
set(CPACK_PACKAGE_VENDOR "The Folio developers")
set(CPACK_PACKAGE_CONTACT "${FOLIO_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(_folio_contents)
foreach(tool ${FOLIO_PROGRAMS})
    if(TARGET ${tool})
        list(APPEND _folio_contents ${tool})
    endif()
endforeach()
list(JOIN _folio_contents ", " _folio_contents)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "ask questions of long documents with Kimi Linear on your own GPU")
# Lines under 80 characters: dpkg shows them as they are.
set(CPACK_PACKAGE_DESCRIPTION
"Folio answers questions about long material - contracts, papers, whole code
repositories - with all of it in one model context of up to a million tokens.
It runs Moonshot AI's Kimi Linear model through its own C++ and CUDA inference
engine on the local NVIDIA GPU; nothing leaves the machine. Answers cite pages
and file lines, and the model state after each document is kept on disk, so a
follow-up question reads only the question.

Programs: ${_folio_contents}.
The demo model included has random weights: its answers are not meaningful.
The real model, Kimi-Linear-48B-A3B-Instruct (about 98 GB), is downloaded
separately.")

set(CPACK_DEBIAN_PACKAGE_RELEASE ${FOLIO_DEB_RELEASE})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${FOLIO_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Shared libraries in Depends, with versions, from dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# What is loaded at run time and so invisible to dpkg-shlibdeps.
set(_folio_depends)
if(TARGET folio)
    # Qt's platform plugins (xcb, wayland-egl via qt6-wayland) are dlopen()ed; libqt6gui6 only
    # recommends them.
    list(APPEND _folio_depends qt6-qpa-plugins)
endif()
if(FOLIO_HAVE_CUDA)
    # libcudart and libcublas come from NVIDIA's CUDA repository or installer, which dpkg-shlibdeps
    # cannot map to packages: search them where the toolkit is, name the packages here.
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CUDAToolkit_LIBRARY_DIR})
    set(FOLIO_DEB_CUDA_DEPENDS
        "cuda-cudart-${CUDAToolkit_VERSION_MAJOR}-${CUDAToolkit_VERSION_MINOR}, libcublas-${CUDAToolkit_VERSION_MAJOR}-${CUDAToolkit_VERSION_MINOR}"
        CACHE STRING "Debian packages that provide the CUDA runtime and cuBLAS libraries")
    list(APPEND _folio_depends ${FOLIO_DEB_CUDA_DEPENDS})
endif()
list(JOIN _folio_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)

include(CPack)
