# Writes OUT: a C++ file defining qlc::bundledCalibrationText() with the contents of IN,
# so the qlc binary carries its default calibration text.
file(READ "${IN}" text)
file(WRITE "${OUT}.tmp" "// Generated from ${NAME} by EmbedText.cmake.\n#include \"compiler/Calibration.h\"\nnamespace qlc {\nstd::string_view bundledCalibrationText() {\n  static const char text[] = R\"QLCTEXT(${text})QLCTEXT\";\n  return std::string_view(text, sizeof(text) - 1);\n}\n} // namespace qlc\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
