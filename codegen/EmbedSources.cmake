# Writes OUT: a C++ file defining qlc::embeddedKernelSources() with the contents of FILES
# (paths relative to BASE), so the qlc binary carries its kernel templates.
string(REPLACE "|" ";" FILES "${FILES}")
set(body "")
foreach(f IN LISTS FILES)
  file(READ "${BASE}/${f}" text)
  get_filename_component(name "${f}" NAME)
  if(f MATCHES "^runtime/include/qlc/")
    set(name "qlc/${name}")
  endif()
  string(APPEND body "    {\"${name}\", R\"QLCSRC(${text})QLCSRC\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from the kernel sources by EmbedSources.cmake.\n#include \"codegen/Codegen.h\"\nnamespace qlc {\nconst std::vector<EmbeddedFile> &embeddedKernelSources() {\n  static const std::vector<EmbeddedFile> files = {\n${body}  };\n  return files;\n}\n} // namespace qlc\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
