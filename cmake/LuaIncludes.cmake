# Bull's script includes (bull 4.16, lib/commands/script-loader.js), resolved
# at build time as Bull's own package build does. A line
#   --- @include "<path>"
# (two or three dashes, double or single quotes) is replaced by the file at
# <path>, relative to the including file, ".lua" added when <path> has no
# extension; included files may include others. As in Bull, a file goes in
# at its first include in a script and every later include of it is dropped,
# so each helper is defined once per script. An include not found, a cycle,
# a malformed include line or a file including the same file twice stops
# the build with the file and line.
#
# Script mode, to lint what Redis will run (tests/lint/luacheck.sh):
#   cmake -DSCRIPTS_DIR=<dir> -DOUTPUT_DIR=<dir> -P LuaIncludes.cmake
# writes each <dir>/*.lua, its includes resolved, to OUTPUT_DIR.

cmake_minimum_required(VERSION 3.18) # IN_LIST and string(HEX) in script mode

# Sets `out_var` to the text of `file` with its includes resolved.
function(lua_resolve_includes file out_var)
  set_property(GLOBAL PROPERTY lua_resolve_emitted "")
  _lua_resolve("${file}" "" text)
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# `stack` is the chain of files including `file`, to report a cycle. The
# file is read line by line with string(FIND): as a CMake list, the `;` and
# unbalanced `[` of Lua code would not survive.
function(_lua_resolve file stack out_var)
  list(APPEND stack "${file}")
  get_filename_component(dir "${file}" DIRECTORY)
  file(READ "${file}" rest)
  set(text "")
  set(direct "")
  set(line_no 0)
  while(NOT rest STREQUAL "")
    string(FIND "${rest}" "\n" end)
    if(end EQUAL -1)
      set(line "${rest}")
      set(rest "")
    else()
      math(EXPR end "${end} + 1")
      string(SUBSTRING "${rest}" 0 ${end} line)
      string(SUBSTRING "${rest}" ${end} -1 rest)
    endif()
    math(EXPR line_no "${line_no} + 1")
    if(NOT line MATCHES "^---?[ \t]*@include")
      string(APPEND text "${line}")
      continue()
    endif()
    set(where "${file}:${line_no}")
    if(NOT line MATCHES "^---?[ \t]*@include[ \t]+[\"']([^\"']+)[\"'][; \t\r\n]*$")
      message(FATAL_ERROR "${where}: malformed include, want --- @include \"<path>\"")
    endif()
    set(ref "${CMAKE_MATCH_1}")
    get_filename_component(ext "${ref}" LAST_EXT)
    if(ext STREQUAL "")
      string(APPEND ref ".lua")
    endif()
    get_filename_component(path "${ref}" ABSOLUTE BASE_DIR "${dir}")
    if(NOT EXISTS "${path}" OR IS_DIRECTORY "${path}")
      message(FATAL_ERROR "${where}: include not found: \"${CMAKE_MATCH_1}\" (no ${path})")
    endif()
    if(path IN_LIST stack)
      list(APPEND stack "${path}")
      list(JOIN stack "\n  includes " chain)
      message(FATAL_ERROR "${where}: include cycle:\n  ${chain}")
    endif()
    if(path IN_LIST direct)
      message(FATAL_ERROR "${where}: \"${CMAKE_MATCH_1}\" is already included in this file")
    endif()
    list(APPEND direct "${path}")
    get_property(emitted GLOBAL PROPERTY lua_resolve_emitted)
    if(NOT path IN_LIST emitted)
      set_property(GLOBAL APPEND PROPERTY lua_resolve_emitted "${path}")
      _lua_resolve("${path}" "${stack}" included)
      if(NOT included MATCHES "\n$")
        string(APPEND included "\n")
      endif()
      string(APPEND text "${included}")
    endif()
  endwhile()
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(NOT DEFINED SCRIPTS_DIR OR NOT DEFINED OUTPUT_DIR)
    message(FATAL_ERROR "LuaIncludes.cmake needs -DSCRIPTS_DIR and -DOUTPUT_DIR")
  endif()
  file(GLOB scripts "${SCRIPTS_DIR}/*.lua")
  foreach(script IN LISTS scripts)
    lua_resolve_includes("${script}" text)
    get_filename_component(name "${script}" NAME)
    file(WRITE "${OUTPUT_DIR}/${name}" "${text}")
  endforeach()
endif()
