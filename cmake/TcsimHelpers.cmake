# tcsim_library(NAME SOURCES ... DEPS ...): one library target per code folder.
function(tcsim_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# tcsim_proto(TARGET file.proto ...): compile .proto files with Debian's protoc into TARGET.
function(tcsim_proto target)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(out_cc ${PROJECT_BINARY_DIR}/${stem}.pb.cc)
    set(out_h ${PROJECT_BINARY_DIR}/${stem}.pb.h)
    add_custom_command(
      OUTPUT ${out_cc} ${out_h}
      COMMAND protobuf::protoc --cpp_out=${PROJECT_BINARY_DIR} -I${PROJECT_SOURCE_DIR} ${abs}
      DEPENDS ${abs} protobuf::protoc
      COMMENT "protoc ${rel}")
    target_sources(${target} PRIVATE ${out_cc} ${out_h})
  endforeach()
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
endfunction()

# tcsim_embed(TARGET VAR file): make a data file available as `extern const std::string_view VAR;`
# so the binary never depends on where it is run from.
function(tcsim_embed target var file)
  get_filename_component(abs ${file} ABSOLUTE)
  set(out ${PROJECT_BINARY_DIR}/embedded/${var}.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${abs} -DOUT=${out} -DVAR=${var} -P ${PROJECT_SOURCE_DIR}/cmake/Embed.cmake
    DEPENDS ${abs} ${PROJECT_SOURCE_DIR}/cmake/Embed.cmake
    COMMENT "embed ${file}")
  target_sources(${target} PRIVATE ${out})
endfunction()

# tcsim_test(NAME SOURCES ... DEPS ...): a GoogleTest executable registered with ctest.
function(tcsim_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    TCSIM_SOURCE_DIR="${PROJECT_SOURCE_DIR}" TCSIM_BINARY="${PROJECT_BINARY_DIR}/tcsim")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
