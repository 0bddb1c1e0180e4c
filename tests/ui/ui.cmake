# SPDX-License-Identifier: GPL-3.0-or-later
# GUI suites: the real main window and panes on the offscreen platform, on the tiny generated
# model (and the demo model for the first-start demo session). Each suite saves screenshots of
# what the window shows to build/test-screenshots/ (kept as CI artifacts).
if(NOT TARGET folio_ui)
    return()
endif()
find_package(Qt6 REQUIRED COMPONENTS Gui Widgets Test)
set(FOLIO_SCREENSHOT_DIR "${CMAKE_BINARY_DIR}/test-screenshots")
foreach(suite ui_sources ui_ask ui_citations ui_restart ui_settings)
    folio_add_test(${suite} SOURCES ui/test_${suite}.cpp
                   LIBS folio_ui Qt6::Gui Qt6::Widgets TIMEOUT 600)
    set_target_properties(test_${suite} PROPERTIES AUTOMOC ON)
    target_compile_definitions(test_${suite} PRIVATE
        FOLIO_SCREENSHOT_DIR="${FOLIO_SCREENSHOT_DIR}")
endforeach()
