# keel_add_protocol(TARGET <lib> PROTOS a.proto ... [IMPORT_DIRS dir ...])
#   Compiles protocol .proto files with protoc (C++ messages) and
#   protoc-gen-keel (ids, protocol table, typed dispatch), into the build
#   tree, and makes a library target of them. Users include
#   "<path relative to the source dir>/a.keel.h".
#   Works in Keel's own tree and, after find_package(keel), in a user's
#   project (the installed plugin and options.proto are used there).
function(keel_add_protocol)
  cmake_parse_arguments(A "" "TARGET" "PROTOS;IMPORT_DIRS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/keel_protocol_${A_TARGET})
  set(include_args -I${CMAKE_CURRENT_SOURCE_DIR} -I${KEEL_PROTO_IMPORT_DIR})
  foreach(dir ${A_IMPORT_DIRS})
    list(APPEND include_args -I${dir})
  endforeach()
  get_target_property(plugin_imported keel::protoc-gen-keel IMPORTED)
  if(plugin_imported)
    set(plugin_dep $<TARGET_FILE:keel::protoc-gen-keel>)  # a file: nothing to build
  else()
    set(plugin_dep protoc-gen-keel)                        # a target of this build
  endif()
  set(sources)
  set(headers)
  foreach(proto ${A_PROTOS})
    get_filename_component(abs ${proto} ABSOLUTE)
    file(RELATIVE_PATH rel ${CMAKE_CURRENT_SOURCE_DIR} ${abs})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(outputs ${out_dir}/${stem}.pb.cc ${out_dir}/${stem}.pb.h ${out_dir}/${stem}.keel.h)
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND protobuf::protoc ${include_args}
              --cpp_out=${out_dir}
              --plugin=protoc-gen-keel=$<TARGET_FILE:keel::protoc-gen-keel>
              --keel_out=${out_dir}
              ${abs}
      DEPENDS ${abs} ${plugin_dep} ${KEEL_PROTO_IMPORT_DIR}/keel/proto/options.proto
      COMMENT "protoc + protoc-gen-keel: ${rel}"
      VERBATIM)
    list(APPEND sources ${out_dir}/${stem}.pb.cc)
    list(APPEND headers ${out_dir}/${stem}.pb.h ${out_dir}/${stem}.keel.h)
  endforeach()
  add_library(${A_TARGET} ${sources} ${headers})
  target_include_directories(${A_TARGET} PUBLIC ${out_dir})
  target_link_libraries(${A_TARGET} PUBLIC keel::proto protobuf::libprotobuf)
endfunction()
