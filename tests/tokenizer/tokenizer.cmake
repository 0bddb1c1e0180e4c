# SPDX-License-Identifier: GPL-3.0-or-later
# Tokenizer test suites. Expected outputs and rank subsets live in tokenizer/data/ (regenerate
# them with tokenizer/generate_expected.mjs, which documents how).
if(NOT TARGET folio_tokenizer)
    message(STATUS "Folio: no tokenizer in this build (ICU missing), skipping its test suites")
    return()
endif()
foreach(suite tokenizer_reference tokenizer_files tokenizer_chat tokenizer_utf8)
    folio_add_test(${suite} SOURCES tokenizer/test_${suite}.cpp LIBS folio_tokenizer)
    set_target_properties(test_${suite} PROPERTIES AUTOMOC ON)
    target_compile_definitions(test_${suite} PRIVATE
        FOLIO_TOKENIZER_TEST_DATA="${CMAKE_CURRENT_LIST_DIR}/data")
endforeach()
# The chat suite also runs folio-engine's tokenize command.
if(TARGET folio-engine)
    target_compile_definitions(test_tokenizer_chat PRIVATE
        FOLIO_ENGINE_BINARY="$<TARGET_FILE:folio-engine>")
    add_dependencies(test_tokenizer_chat folio-engine)
endif()
