# valgrind.cmake - memory checks of the schema loader and `h5rec check`
# (include()d from tests/CMakeLists.txt).
#
# The loader's error paths free a half-built model; the ASan build covers
# them through test_schema, and these tests do the same under valgrind
# (definite and indirect leaks are errors). They also pin the exit codes of
# `h5rec check`: 0 for the example schemas, 1 with FILE:LINE:COL for an
# invalid one, 2 for a usage error. valgrind's own error exit code is 99 so
# it cannot be mistaken for either. Skipped in sanitizer builds, where
# valgrind cannot run.
find_program(H5REC_VALGRIND valgrind)
if(H5REC_VALGRIND AND NOT H5REC_SANITIZE)
  set(H5REC_VALGRIND_COMMAND ${H5REC_VALGRIND} -q --leak-check=full
      --errors-for-leak-kinds=definite,indirect --error-exitcode=99)

  add_test(NAME valgrind.test_schema
           COMMAND ${H5REC_VALGRIND_COMMAND} $<TARGET_FILE:test_schema>)
  set_tests_properties(valgrind.test_schema PROPERTIES LABELS "unit;valgrind" TIMEOUT 600)

  # PASS_REGULAR_EXPRESSION ignores the exit status, so the wrapper
  # prints it and the expression checks it together with the output (a
  # newline, not ";", separates the two commands: ";" would split the list).
  set(H5REC_EXIT_STATUS sh -c "\"$@\" 2>&1\necho \"exit status $?\"" sh)

  foreach(example weather accelerator digitizer)
    add_test(NAME valgrind.check_${example}
             COMMAND ${H5REC_EXIT_STATUS} ${H5REC_VALGRIND_COMMAND} $<TARGET_FILE:h5rec> check
                     ${CMAKE_SOURCE_DIR}/schemas/${example}.yaml)
    set_tests_properties(valgrind.check_${example} PROPERTIES LABELS "unit;valgrind"
      TIMEOUT 300 PASS_REGULAR_EXPRESSION "schema '${example}' .* is valid.*exit status 0")
  endforeach()

  add_test(NAME valgrind.check_invalid
           COMMAND ${H5REC_EXIT_STATUS} ${H5REC_VALGRIND_COMMAND} $<TARGET_FILE:h5rec> check
                   ${CMAKE_CURRENT_SOURCE_DIR}/data/schema/bad_roll.yaml)
  set_tests_properties(valgrind.check_invalid PROPERTIES LABELS "unit;valgrind" TIMEOUT 300
    PASS_REGULAR_EXPRESSION "bad_roll.yaml:5:18: output.roll.every: expected a duration like 250ms, 10s, 1h, 1d, got '10 parsecs'\nexit status 1")

  add_test(NAME valgrind.check_usage
           COMMAND ${H5REC_EXIT_STATUS} ${H5REC_VALGRIND_COMMAND} $<TARGET_FILE:h5rec> check)
  set_tests_properties(valgrind.check_usage PROPERTIES LABELS "unit;valgrind" TIMEOUT 300
    PASS_REGULAR_EXPRESSION "usage: h5rec check.*exit status 2")
endif()
