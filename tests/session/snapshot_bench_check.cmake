# SPDX-License-Identifier: GPL-3.0-or-later
# CTest script: folio-snapshot-bench on the generated tiny model with the CPU backend and small
# sizes exits 0, prints sane JSON (bytes read, restored tokens == written tokens, a time to first
# token) and leaves no files behind; a failing run exits non-zero and also leaves nothing behind.
#   cmake -DBENCH=... -DENGINE=... -DWORK=... -P snapshot_bench_check.cmake
cmake_minimum_required(VERSION 3.25)
foreach(var BENCH ENGINE WORK)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "snapshot_bench_check: ${var} is not set")
    endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/runs")
execute_process(COMMAND "${ENGINE}" make-model --preset tiny --out "${WORK}/model"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make-model failed (${rc}): ${err}")
endif()

set(tokens 600)
execute_process(COMMAND "${BENCH}" --model "${WORK}/model" --backend cpu --tokens ${tokens}
                        --links 3 --dir "${WORK}/runs" --question 8 --rounds 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "folio-snapshot-bench failed (${rc}): ${err}")
endif()

string(REPLACE "\n" ";" lines "${out}")
set(rounds 0)
set(seenSummary FALSE)
set(seenQuestion FALSE)
foreach(line IN LISTS lines)
    if(NOT line MATCHES "^{")
        continue()
    endif()
    string(JSON measure GET "${line}" measure)
    string(JSON backend GET "${line}" backend)
    if(NOT backend MATCHES "^cpu")
        message(FATAL_ERROR "backend ${backend} in: ${line}")
    endif()
    if(measure STREQUAL "restore_round")
        math(EXPR rounds "${rounds} + 1")
        string(JSON restored GET "${line}" restored_tokens)
        string(JSON bytes GET "${line}" bytes)
        string(JSON diskBytes GET "${line}" disk_bytes)
        string(JSON ratio GET "${line}" ratio_read_verify)
        if(NOT restored EQUAL tokens OR bytes LESS_EQUAL 0 OR diskBytes LESS bytes
           OR ratio LESS_EQUAL 0)
            message(FATAL_ERROR "implausible round: ${line}")
        endif()
    elseif(measure STREQUAL "summary")
        set(seenSummary TRUE)
        string(JSON bytes GET "${line}" bytes)
        string(JSON disk GET "${line}" disk_MBps)
        string(JSON restore GET "${line}" restore_MBps)
        if(bytes LESS_EQUAL 0 OR disk LESS_EQUAL 0 OR restore LESS_EQUAL 0)
            message(FATAL_ERROR "implausible summary: ${line}")
        endif()
    elseif(measure STREQUAL "question")
        set(seenQuestion TRUE)
        string(JSON ttft GET "${line}" ttft_ms)
        if(ttft LESS_EQUAL 0)
            message(FATAL_ERROR "implausible question: ${line}")
        endif()
    endif()
endforeach()
if(NOT rounds EQUAL 2 OR NOT seenSummary OR NOT seenQuestion)
    message(FATAL_ERROR "missing measures (rounds ${rounds}, summary ${seenSummary}, "
                        "question ${seenQuestion}) in:\n${out}")
endif()

file(GLOB left "${WORK}/runs/*")
if(left)
    message(FATAL_ERROR "files left behind: ${left}")
endif()

# An error after the folder is made (more tokens than the model's context) still removes it.
execute_process(COMMAND "${BENCH}" --model "${WORK}/model" --backend cpu --tokens 100000000
                        --links 2 --dir "${WORK}/runs"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(rc EQUAL 0)
    message(FATAL_ERROR "folio-snapshot-bench succeeded beyond the model's context")
endif()
file(GLOB left "${WORK}/runs/*")
if(left)
    message(FATAL_ERROR "files left behind after an error: ${left}")
endif()
file(REMOVE_RECURSE "${WORK}")
