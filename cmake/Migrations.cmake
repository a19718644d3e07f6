# bpmc_embed_migrations(OUT_VAR NAMESPACE): compiles the sorted migrations/*.sql of the
# calling directory into a generated C++ file defining NAMESPACE::Migrations()
# (cmake/EmbedMigrations.cmake), so a deployed binary carries its schema. Sets OUT_VAR to
# the generated file, to be listed among the library's sources.
function(bpmc_embed_migrations out_var namespace)
  file(GLOB files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/migrations/*.sql)
  list(SORT files)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/migrations_embedded.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${namespace}
            "-DFILES=${files}" -P ${CMAKE_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    DEPENDS ${files} ${CMAKE_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    COMMENT "Embedding the migrations of ${namespace}"
    VERBATIM)  # keeps the ;-separated FILES list one shell argument
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
