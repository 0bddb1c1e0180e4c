# SPDX-License-Identifier: GPL-3.0-or-later
# Ingest test suites. Every input is made by the tests: PDFs with Qt's PDF writer (Qt Gui, on the
# offscreen platform), encrypted and damaged copies with qpdf, repositories with the git command.
find_package(Qt6 REQUIRED COMPONENTS Gui)
foreach(suite ingest_text ingest_pdf ingest_repository prompt_assembly)
    folio_add_test(${suite} SOURCES ingest/test_${suite}.cpp LIBS folio_ingest Qt6::Gui)
    set_target_properties(test_${suite} PROPERTIES AUTOMOC ON)
    target_compile_definitions(test_${suite} PRIVATE
        FOLIO_TOKENIZER_TEST_DATA="${CMAKE_CURRENT_LIST_DIR}/../tokenizer/data")
endforeach()
set_tests_properties(ingest_pdf ingest_repository PROPERTIES TIMEOUT 600)
if(TARGET folio-cli)
    target_compile_definitions(test_ingest_repository PRIVATE
        FOLIO_CLI_BINARY="$<TARGET_FILE:folio-cli>")
    add_dependencies(test_ingest_repository folio-cli)
endif()

# folio-make-test-pdf: writes multi-column PDFs of any length (benchmarks, docs/PERFORMANCE.md).
add_executable(folio-make-test-pdf ingest/make_test_pdf.cpp)
target_link_libraries(folio-make-test-pdf PRIVATE Qt6::Gui folio_warnings)
