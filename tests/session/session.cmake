# SPDX-License-Identifier: GPL-3.0-or-later
# Session, storage and snapshot suites on the generated tiny model with its byte tokenizer.
add_executable(session_fault_helper session/session_fault_helper.cpp)
target_link_libraries(session_fault_helper PRIVATE folio_session folio_warnings)

folio_add_test(session_storage SOURCES session/test_session_storage.cpp
               LIBS folio_session TIMEOUT 300)
folio_add_test(session_reuse SOURCES session/test_session_reuse.cpp
               LIBS folio_session TIMEOUT 600)
folio_add_test(session_faults SOURCES session/test_session_faults.cpp
               LIBS folio_session TIMEOUT 600)
target_compile_definitions(test_session_faults PRIVATE
    FOLIO_SESSION_HELPER="$<TARGET_FILE:session_fault_helper>")
add_dependencies(test_session_faults session_fault_helper)

# folio-snapshot-bench (Qt-free) on the tiny model, CPU backend, small sizes.
add_test(NAME snapshot_bench
         COMMAND ${CMAKE_COMMAND} -DBENCH=$<TARGET_FILE:folio-snapshot-bench>
                 -DENGINE=$<TARGET_FILE:folio-engine>
                 -DWORK=${FOLIO_TEST_OUTPUT_DIR}/snapshot-bench
                 -P ${CMAKE_CURRENT_LIST_DIR}/snapshot_bench_check.cmake)
set_tests_properties(snapshot_bench PROPERTIES TIMEOUT 120)
