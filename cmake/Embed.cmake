# Writes OUT: a C++ file defining `const std::string_view VAR` holding the bytes of IN.
file(READ ${IN} content HEX)
string(LENGTH "${content}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${content}")
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\n#include <string_view>\nnamespace tcsim::embedded {\nstatic const char ${VAR}_data[] = {${bytes} 0};\nextern const std::string_view ${VAR}(${VAR}_data, ${len});\n}\n")
