# moewb_add_test(tst_name SOURCES a.cpp ... LINK target... [LABELS l...] [TIMEOUT s])
# One Qt Test executable per tst_*.cpp, registered with ctest.
function(moewb_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LINK;LABELS" ${ARGN})
  if(NOT T_SOURCES)
    set(T_SOURCES ${name}.cpp)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE Qt6::Test ${T_LINK})
  set_target_properties(${name} PROPERTIES AUTOMOC ON)
  target_compile_definitions(${name} PRIVATE
    MOEWB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    MOEWB_BINARY_DIR="${PROJECT_BINARY_DIR}"
    MOEWB_PYTHON="/usr/bin/python3")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  if(TARGET moewb)
    set(cli "MOEWB_CLI=$<TARGET_FILE:moewb>")
  else()
    set(cli "MOEWB_CLI=")
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "QT_QPA_PLATFORM=offscreen;${cli}")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
