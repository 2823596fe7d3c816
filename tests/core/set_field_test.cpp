// set_field_by_path (`--set key=value`) on scalar and repeated fields: list syntax
// ("[a, b]", "[]"), per-element parsing like a scalar of the field, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "core/error.hpp"
#include "core/proto_util.hpp"
#include "tests/core/set_field_test.pb.h"

using tcsim::core::InputError;
using tcsim::core::set_field_by_path;
using tcsim::coretest::AllKinds;

namespace {

void set(AllKinds& m, const std::string& path, const std::string& text) {
  set_field_by_path(m, path, text, "--set x." + path);
}

/// The InputError of setting path=text; fails the test if none is thrown.
InputError error_of(const std::string& path, const std::string& text, AllKinds m = {}) {
  try {
    set(m, path, text);
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << path << "=" << text << " was accepted";
  return InputError("", "");
}

void expect_has(const std::string& text, const std::string& needle) {
  EXPECT_NE(text.find(needle), std::string::npos) << "'" << needle << "' not in: " << text;
}

}  // namespace

TEST(SetFieldList, RepeatedDouble) {
  AllKinds m;
  set(m, "doubles", "[0.1,0.2,0.3]");
  ASSERT_EQ(m.doubles_size(), 3);
  EXPECT_EQ(m.doubles(0), 0.1);
  EXPECT_EQ(m.doubles(1), 0.2);
  EXPECT_EQ(m.doubles(2), 0.3);
  set(m, "floats", "[1.5, 1e-3]");
  ASSERT_EQ(m.floats_size(), 2);
  EXPECT_FLOAT_EQ(m.floats(1), 1e-3f);
}

TEST(SetFieldList, RepeatedIntegersTakeCountSuffixesLikeScalars) {
  AllKinds m;
  set(m, "ints", "[224, 448,2K, -3]");
  ASSERT_EQ(m.ints_size(), 4);
  EXPECT_EQ(m.ints(0), 224);
  EXPECT_EQ(m.ints(1), 448);
  EXPECT_EQ(m.ints(2), 2000);  // same as a scalar: count=2K gives 2000
  EXPECT_EQ(m.ints(3), -3);
  set(m, "count", "2K");
  EXPECT_EQ(m.count(), 2000);
  set(m, "ints32", "[7]");
  set(m, "uints", "[1M]");
  EXPECT_EQ(m.ints32(0), 7);
  EXPECT_EQ(m.uints(0), 1000000u);
}

TEST(SetFieldList, RepeatedEnumStringAndBool) {
  AllKinds m;
  set(m, "colors", "[red, GREEN ,Blue]");
  ASSERT_EQ(m.colors_size(), 3);
  EXPECT_EQ(m.colors(0), AllKinds::RED);
  EXPECT_EQ(m.colors(1), AllKinds::GREEN);
  EXPECT_EQ(m.colors(2), AllKinds::BLUE);
  set(m, "names", R"([ a , "b, c" ,d e])");
  ASSERT_EQ(m.names_size(), 3);
  EXPECT_EQ(m.names(0), "a");
  EXPECT_EQ(m.names(1), "b, c");  // quotes keep a comma inside one element
  EXPECT_EQ(m.names(2), "d e");
  set(m, "flags", "[true,off,1]");
  ASSERT_EQ(m.flags_size(), 3);
  EXPECT_TRUE(m.flags(0));
  EXPECT_FALSE(m.flags(1));
  EXPECT_TRUE(m.flags(2));
}

TEST(SetFieldList, NestedPathAndWhitespace) {
  AllKinds m;
  set(m, "inner.weights", "  [ 1 ,\t2 , 3 ]  ");
  ASSERT_EQ(m.inner().weights_size(), 3);
  EXPECT_EQ(m.inner().weights(2), 3.0);
}

TEST(SetFieldList, ReplacesAndEmptyBracketsClear) {
  AllKinds m;
  set(m, "doubles", "[1,2,3]");
  set(m, "doubles", "[4]");
  ASSERT_EQ(m.doubles_size(), 1);  // replaced, not appended
  EXPECT_EQ(m.doubles(0), 4.0);
  set(m, "doubles", "[]");
  EXPECT_EQ(m.doubles_size(), 0);
  set(m, "ints", "[1]");
  set(m, "ints", "[ ]");
  EXPECT_EQ(m.ints_size(), 0);
}

TEST(SetFieldList, SameTextSameMessage) {
  AllKinds a, b;
  set(a, "doubles", "[0.1,0.2,0.3]");
  set(b, "doubles", "[ 0.1 , 0.2 , 0.3 ]");
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
}

TEST(SetFieldList, BadElementNamesKeyIndexAndValidForm) {
  AllKinds m;
  set(m, "doubles", "[9]");
  InputError e = error_of("doubles", "[0.1,abc,0.3]", m);
  EXPECT_EQ(e.where(), "--set x.doubles");
  expect_has(e.problem(), "element [1]");
  expect_has(e.problem(), "'abc'");
  expect_has(e.problem(), "[0.5,0.25,0.25]");
  // A unit where a plain number is meant, a fraction for an integer, an unknown enum name.
  expect_has(error_of("doubles", "[1, 2GBps]").problem(), "element [1]");
  e = error_of("ints", "[1, 2, 2.5]");
  expect_has(e.problem(), "element [2]");
  expect_has(e.problem(), "whole number");
  e = error_of("colors", "[red, purple]");
  expect_has(e.problem(), "element [1]");
  expect_has(e.problem(), "valid: red, green, blue");
  expect_has(error_of("uints", "[-1]").problem(), "non-negative");
  expect_has(error_of("ints32", "[5000000000]").problem(), "out of range");
}

TEST(SetFieldList, BadElementLeavesTheListUnchanged) {
  AllKinds m;
  set(m, "doubles", "[9]");
  try {
    set(m, "doubles", "[1,x]");
  } catch (const InputError&) {
  }
  ASSERT_EQ(m.doubles_size(), 1);
  EXPECT_EQ(m.doubles(0), 9.0);
}

TEST(SetFieldList, MalformedLists) {
  for (const char* bad : {"[1,2", "[1,,2]", "[1,2,]", "[,]", "[[1,2]]", "[1,2]x", "[\"a]"}) {
    InputError e = error_of("doubles", bad);
    EXPECT_EQ(e.where(), "--set x.doubles") << bad;
    expect_has(e.problem(), "[0.5,0.25,0.25]");
  }
  expect_has(error_of("doubles", "[1,,2]").problem(), "element [1] is empty");
  expect_has(error_of("doubles", "[1,2").problem(), "not a complete list");
}

TEST(SetFieldList, ScalarForAListSuggestsBrackets) {
  InputError e = error_of("doubles", "0.5");
  EXPECT_EQ(e.where(), "--set x.doubles");
  expect_has(e.problem(), "is a list (repeated field)");
  expect_has(e.problem(), "[0.5]");
  expect_has(e.problem(), "[]");
  expect_has(error_of("ints", "").problem(), "[1,2,3]");
}

TEST(SetFieldList, ListForAScalarSuggestsOneValue) {
  InputError e = error_of("count", "[1,2]");
  expect_has(e.problem(), "not a repeated field");
  expect_has(e.problem(), "drop the brackets");
  expect_has(error_of("ratio", "[0.5]").problem(), "e.g. 0.5");
  expect_has(error_of("color", "[red]").problem(), "e.g. red");
  expect_has(error_of("flag", "[]").problem(), "e.g. true");
  // A string field takes any text, brackets included.
  AllKinds m;
  set(m, "label", "[draft]");
  EXPECT_EQ(m.label(), "[draft]");
}

TEST(SetFieldList, ListsOfSectionsAndSingleElementsAreRejected) {
  expect_has(error_of("items", "[a]").problem(), "list of Item sections");
  expect_has(error_of("items.name", "a").problem(), "config file");
  InputError e = error_of("doubles[0]", "0.5");
  expect_has(e.problem(), "set the whole list");
  expect_has(e.problem(), "doubles=[0.5,0.25,0.25]");
  expect_has(error_of("items[0].name", "a").problem(), "list of Item sections");
  expect_has(error_of("count[1]", "2").problem(), "only exists for lists");
  expect_has(error_of("doubles.x", "1").problem(), "not a section");
}

TEST(SetFieldList, SettablePathsListRepeatedScalarsButNotSections) {
  auto paths = tcsim::core::settable_paths(AllKinds::descriptor());
  auto has = [&](const std::string& p) { return std::find(paths.begin(), paths.end(), p) != paths.end(); };
  EXPECT_TRUE(has("doubles"));
  EXPECT_TRUE(has("inner.weights"));
  EXPECT_TRUE(has("colors"));
  EXPECT_TRUE(has("count"));
  EXPECT_FALSE(has("items"));
  EXPECT_FALSE(has("items.name"));
}

// Config files: textproto and JSON accept nan and inf for double and float fields; a file
// holding one anywhere (a scalar, a list element, a nested message, a message in a list) is
// an error naming the field, not a value that slips past range checks written as x < 0.
namespace {
std::string parse_error(const std::string& text) {
  AllKinds m;
  try {
    tcsim::core::parse_textproto(text, "f.textproto", m);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ConfigFile, NanAndInfinityAreRejectedWithTheFieldPath) {
  EXPECT_EQ(parse_error("ratio: 0.5 doubles: [1, 2] inner { weights: [0.25] }"), "");
  expect_has(parse_error("ratio: nan"), "f.textproto: ratio is not a finite number");
  expect_has(parse_error("ratio: -inf"), "ratio is not a finite number");
  expect_has(parse_error("doubles: [1, inf]"), "doubles[1] is not a finite number");
  expect_has(parse_error("floats: [nan]"), "floats[0] is not a finite number");
  expect_has(parse_error("inner { weights: [0.5, nan] }"), "inner.weights[1] is not a finite number");
  // JSON too (load_config_file), where protobuf spells them "NaN" and "Infinity".
  const std::string path = testing::TempDir() + "/nan_config.json";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(R"({"count": 3, "inner": {"weights": [1.0, "Infinity"]}})", f);
    std::fclose(f);
  }
  AllKinds m;
  try {
    tcsim::core::load_config_file(path, m);
    ADD_FAILURE() << "Infinity in JSON was accepted";
  } catch (const InputError& e) {
    expect_has(e.what(), "inner.weights[1] is not a finite number");
  }
}
