// The fake tcsim as a program of its own (tests/sweep/fake_tcsim.hpp says what it does).
#include <string>
#include <vector>

#include "tests/sweep/fake_tcsim.hpp"

int main(int argc, char** argv) { return tcsim::sweep::fake::run(std::vector<std::string>(argv, argv + argc)); }
