# Packs the self-contained kiln-node artifact (cmake -P; called by the kiln_node_artifact
# targets in builder/CMakeLists.txt). Writes the ROOT tree node_artifact.hpp describes:
#   usr/bin/kiln-node                      the static launcher (kiln-node-launcher)
#   usr/lib/kiln/node/kiln-node            the real kiln-node, stripped
#   usr/lib/kiln/node/lib/*                its ELF loader and every library it needs, found
#                                          by the build host's loader (ldd), copied as
#                                          regular files under their sonames
#   usr/lib/kiln/node/VERSION              "kiln-node VERSION (kiln COMMIT)"
# into OUT.tmp, then replaces OUT, so a failed pack leaves no half-written artifact.
# Inputs: -DPROGRAM= -DLAUNCHER= -DOUT= -DVERSION_LINE= -DSTRIP=
cmake_minimum_required(VERSION 3.25)
foreach(var PROGRAM LAUNCHER OUT VERSION_LINE)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "node_artifact.cmake: ${var} is not set")
  endif()
endforeach()

set(tmp "${OUT}.tmp")
set(libexec "${tmp}/usr/lib/kiln/node")
file(REMOVE_RECURSE "${tmp}")
file(MAKE_DIRECTORY "${tmp}/usr/bin" "${libexec}/lib")

execute_process(COMMAND ldd "${PROGRAM}" OUTPUT_VARIABLE ldd_out ERROR_VARIABLE ldd_err RESULT_VARIABLE ldd_rc)
if(NOT ldd_rc EQUAL 0)
  message(FATAL_ERROR "ldd ${PROGRAM} failed: ${ldd_err}")
endif()
string(REPLACE "\n" ";" ldd_lines "${ldd_out}")
set(loader "")
set(count 0)
foreach(line IN LISTS ldd_lines)
  string(STRIP "${line}" line)
  if(line STREQUAL "" OR line MATCHES "^linux-vdso")
    continue()
  endif()
  if(line MATCHES "not found")
    message(FATAL_ERROR "kiln-node needs a library the build host lacks: ${line}")
  endif()
  if(line MATCHES "^([^ ]+) => (/[^ ]+) \\(0x")
    set(soname "${CMAKE_MATCH_1}")
    set(path "${CMAKE_MATCH_2}")
  elseif(line MATCHES "^(/[^ ]+/(ld-linux[^ /]*)) \\(0x")
    set(path "${CMAKE_MATCH_1}")
    set(soname "${CMAKE_MATCH_2}")
    set(loader "${soname}")
  else()
    message(FATAL_ERROR "node_artifact.cmake: cannot read ldd's line '${line}'")
  endif()
  file(REAL_PATH "${path}" real)
  file(COPY_FILE "${real}" "${libexec}/lib/${soname}")
  file(CHMOD "${libexec}/lib/${soname}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       WORLD_READ WORLD_EXECUTE)
  math(EXPR count "${count} + 1")
endforeach()
if(NOT loader STREQUAL "ld-linux-x86-64.so.2")
  message(FATAL_ERROR "node_artifact.cmake: expected the x86_64 loader ld-linux-x86-64.so.2 in ldd's output, got '${loader}'")
endif()

file(COPY_FILE "${PROGRAM}" "${libexec}/kiln-node")
if(DEFINED STRIP AND NOT STRIP STREQUAL "")
  execute_process(COMMAND "${STRIP}" --strip-unneeded "${libexec}/kiln-node" RESULT_VARIABLE strip_rc)
  if(NOT strip_rc EQUAL 0)
    message(FATAL_ERROR "strip ${libexec}/kiln-node failed")
  endif()
endif()
file(COPY_FILE "${LAUNCHER}" "${tmp}/usr/bin/kiln-node")
foreach(exe "${tmp}/usr/bin/kiln-node" "${libexec}/kiln-node")
  file(CHMOD "${exe}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
       WORLD_EXECUTE)
endforeach()
file(WRITE "${libexec}/VERSION" "${VERSION_LINE}\n")

file(REMOVE_RECURSE "${OUT}")
file(RENAME "${tmp}" "${OUT}")
message(STATUS "kiln-node artifact: ${OUT} (${count} libraries)")
