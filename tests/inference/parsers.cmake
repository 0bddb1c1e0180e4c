# SPDX-License-Identifier: GPL-3.0-or-later
# Test suites for the model-file parsers (JSON, safetensors, config.json, checkpoints).
folio_add_test(json SOURCES inference/test_json.cpp LIBS folio_inference)
folio_add_test(safetensors SOURCES inference/test_safetensors.cpp LIBS folio_inference)
folio_add_test(model_config SOURCES inference/test_model_config.cpp LIBS folio_inference)
folio_add_test(checkpoint_layout SOURCES inference/test_checkpoint_layout.cpp LIBS folio_inference)

# The libFuzzer targets of ../fuzz replayed without libFuzzer (any compiler): each target is
# compiled with its entry point renamed, so that the three share one executable.
get_filename_component(folio_fuzz_dir "${CMAKE_CURRENT_LIST_DIR}/../fuzz" ABSOLUTE)
set_source_files_properties(${folio_fuzz_dir}/fuzz_json.cpp PROPERTIES
    COMPILE_DEFINITIONS FOLIO_FUZZ_ENTRY=folioFuzzJson)
set_source_files_properties(${folio_fuzz_dir}/fuzz_safetensors.cpp PROPERTIES
    COMPILE_DEFINITIONS FOLIO_FUZZ_ENTRY=folioFuzzSafetensors)
set_source_files_properties(${folio_fuzz_dir}/fuzz_model_config.cpp PROPERTIES
    COMPILE_DEFINITIONS FOLIO_FUZZ_ENTRY=folioFuzzModelConfig)
folio_add_test(fuzz_replay
    SOURCES inference/test_fuzz_replay.cpp
            ${folio_fuzz_dir}/fuzz_json.cpp
            ${folio_fuzz_dir}/fuzz_safetensors.cpp
            ${folio_fuzz_dir}/fuzz_model_config.cpp
    LIBS folio_inference)
target_compile_definitions(test_fuzz_replay PRIVATE
    FOLIO_FUZZ_CORPUS_DIR="${folio_fuzz_dir}/corpus")
