#include "nnmark/core/json.hpp"

#include "../support/errors.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

using namespace nnmark;
using testing::thrown_message;

namespace {

// The message of the format_error that parsing `text` throws ("" if it parses).
std::string parse_error(std::string_view text) {
    return thrown_message<format_error>([&] { json::parse(text, "test.json"); });
}

// The message of the format_error that `access` to a json_view throws ("" if none).
template <class Access>
std::string view_error(Access access) {
    return thrown_message<format_error>(access);
}

}  // namespace

TEST_CASE("json: parses every kind of value") {
    const json v = json::parse(R"( {"n": null, "t": true, "f": false, "i": -42, "d": 2.5e-3,
                                    "s": "a\"b\\c\/\n\t\u00e9\ud83d\ude00", "a": [1, [2], {}], "o": {"x": []}} )",
                               "test.json");
    REQUIRE(v.is_object());
    CHECK(v.find("n")->is_null());
    CHECK(*v.find("t")->if_bool() == true);
    CHECK(*v.find("f")->if_bool() == false);
    CHECK(*v.find("i")->if_integer() == -42);
    CHECK(*v.find("d")->if_double() == 2.5e-3);
    CHECK(*v.find("s")->if_string() == "a\"b\\c/\n\t\xC3\xA9\xF0\x9F\x98\x80");
    CHECK(v.find("a")->if_array()->size() == 3);
    CHECK(v.find("o")->find("x")->is_array());
    CHECK(v.find("missing") == nullptr);
}

TEST_CASE("json: integers stay exact beyond 2^53, other numbers are doubles") {
    const json v = json::parse("[9007199254740993, -9223372036854775808, 9223372036854775807, 1.0, 1e2, "
                               "18446744073709551616, -0]",
                               "test.json");
    const auto& a = *v.if_array();
    CHECK(*a[0].if_integer() == 9007199254740993LL);  // 2^53 + 1: a double would round it
    CHECK(*a[1].if_integer() == std::numeric_limits<std::int64_t>::min());
    CHECK(*a[2].if_integer() == std::numeric_limits<std::int64_t>::max());
    CHECK(*a[3].if_double() == 1.0);
    CHECK(*a[4].if_double() == 100.0);
    CHECK(*a[5].if_double() == 18446744073709551616.0);  // beyond 64 bits: a double
    CHECK(*a[6].if_integer() == 0);
}

TEST_CASE("json: dump is compact, escapes properly and parses back to an equal value") {
    json o = json::object();
    o.set("name", "conv \"1\"\n\x01/\xC3\xA9");
    o.set("int", 9007199254740993LL);
    o.set("real", 0.1);
    o.set("whole", 2.0);
    o.set("tiny", 4.9406564584124654e-324);
    o.set("neg", -1.5e300);
    json list = json::array();
    list.push_back(nullptr);
    list.push_back(true);
    list.push_back(json::object());
    o.set("list", list);
    o.set("int", 7);  // replaces in place, order kept
    const std::string text = o.dump();
    CHECK(text ==
          "{\"name\":\"conv \\\"1\\\"\\n\\u0001/\xC3\xA9\",\"int\":7,\"real\":0.1,\"whole\":2.0,"
          "\"tiny\":5e-324,\"neg\":-1.5e+300,\"list\":[null,true,{}]}");
    const json back = json::parse(text, "dumped");
    CHECK(back == o);
    CHECK(back.find("whole")->if_double() != nullptr);  // "2.0" does not come back as an integer
    CHECK(back.dump() == text);
}

TEST_CASE("json: object members keep insertion order") {
    const json v = json::parse(R"({"z":1,"a":2,"m":3})", "test.json");
    const auto& o = *v.if_object();
    REQUIRE(o.size() == 3);
    CHECK(o[0].first == "z");
    CHECK(o[1].first == "a");
    CHECK(o[2].first == "m");
    CHECK(v.dump() == R"({"z":1,"a":2,"m":3})");
}

TEST_CASE("json: syntax errors name the source and the byte offset") {
    CHECK(parse_error("") == "test.json: invalid JSON at byte 0: expected a value, found end of input");
    CHECK(parse_error("{\"a\":1} x") ==
          "test.json: invalid JSON at byte 8: unexpected 'x' after the end of the value");
    CHECK(parse_error("[1,]") == "test.json: invalid JSON at byte 3: expected a value, found ']'");
    CHECK(parse_error("[1 2]") ==
          "test.json: invalid JSON at byte 3: expected ',' or ']' in the array starting at byte 0, found '2'");
    CHECK(parse_error("{\"a\" 1}") == "test.json: invalid JSON at byte 5: expected ':' after an object key, found '1'");
    CHECK(parse_error("{1:2}") ==
          "test.json: invalid JSON at byte 1: expected a string key in the object starting at byte 0, found '1'");
    CHECK(parse_error("{\"a\":1,}") ==
          "test.json: invalid JSON at byte 7: expected a string key in the object starting at byte 0, found '}'");
    CHECK(parse_error("tru") == "test.json: invalid JSON at byte 0: expected a value, found 't'");
    CHECK(parse_error("01") == "test.json: invalid JSON at byte 1: leading zero in a number");
    CHECK(parse_error("-") == "test.json: invalid JSON at byte 1: expected a digit, found end of input");
    CHECK(parse_error("1.") == "test.json: invalid JSON at byte 2: expected a digit after '.', found end of input");
    CHECK(parse_error("1e+") == "test.json: invalid JSON at byte 3: expected a digit in the exponent, found end of input");
    CHECK(parse_error(".5") == "test.json: invalid JSON at byte 0: expected a value, found '.'");
    CHECK(parse_error("1e400") == "test.json: invalid JSON at byte 0: number 1e400 is out of the range of a double");
    CHECK(parse_error("NaN") == "test.json: invalid JSON at byte 0: expected a value, found 'N'");
    CHECK(parse_error(std::string_view("[1]\0", 4)) ==
          "test.json: invalid JSON at byte 3: unexpected byte 0x00 after the end of the value");
}

TEST_CASE("json: string errors: escapes, control characters, UTF-8, surrogates") {
    CHECK(parse_error("\"abc") == "test.json: invalid JSON at byte 0: string is not terminated");
    CHECK(parse_error("\"a\\x\"") == "test.json: invalid JSON at byte 3: invalid escape \\x in a string");
    CHECK(parse_error("\"a\\u12g4\"") ==
          "test.json: invalid JSON at byte 6: expected 4 hex digits after \\u, found 'g'");
    CHECK(parse_error("\"a\tb\"") ==
          "test.json: invalid JSON at byte 2: raw control character byte 0x09 in a string (write it as an escape)");
    CHECK(parse_error("\"\xC3\"") == "test.json: invalid JSON at byte 1: invalid UTF-8 in a string");
    CHECK(parse_error("\"\xC0\xAF\"") == "test.json: invalid JSON at byte 1: invalid UTF-8 in a string");  // overlong '/'
    CHECK(parse_error("\"\xED\xA0\x80\"") == "test.json: invalid JSON at byte 1: invalid UTF-8 in a string");  // surrogate
    CHECK(parse_error("\"\xF4\x90\x80\x80\"") == "test.json: invalid JSON at byte 1: invalid UTF-8 in a string");
    CHECK(parse_error("\"x\\udc00\"") == "test.json: invalid JSON at byte 2: unpaired low surrogate \\udc00");
    CHECK(parse_error("\"x\\ud800y\"") ==
          "test.json: invalid JSON at byte 2: high surrogate \\ud800 is not followed by a low surrogate");
    CHECK(parse_error("\"x\\ud800\\u0041\"") ==
          "test.json: invalid JSON at byte 2: high surrogate \\ud800 is not followed by a low surrogate");
    CHECK(parse_error("\"\\u0000\"").empty());  // an escaped NUL is a valid string character
    CHECK(*json::parse("\"\\u0000\"", "t").if_string() == std::string(1, '\0'));
}

TEST_CASE("json: duplicate keys are rejected with both offsets") {
    CHECK(parse_error(R"({"a":1,"b":2,"a":3})") ==
          "test.json: invalid JSON at byte 13: duplicate key \"a\" (first at byte 1)");
    CHECK(parse_error(R"({"a":{"b":1,"b":1}})") ==
          "test.json: invalid JSON at byte 12: duplicate key \"b\" (first at byte 6)");
}

TEST_CASE("json: nesting depth is limited instead of exhausting the stack") {
    const int ok = json::max_depth;
    CHECK(parse_error(std::string(static_cast<std::size_t>(ok), '[') + std::string(static_cast<std::size_t>(ok), ']'))
              .empty());
    const std::string deep(100000, '[');
    CHECK(parse_error(deep) == "test.json: invalid JSON at byte 257: nesting deeper than 256 levels");
}

TEST_CASE("json: dump rejects what JSON cannot carry") {
    CHECK_THROWS_AS(json(std::numeric_limits<double>::quiet_NaN()).dump(), argument_error);
    CHECK_THROWS_AS(json(std::numeric_limits<double>::infinity()).dump(), argument_error);
    CHECK_THROWS_AS(json(std::string("\xFF")).dump(), argument_error);
    CHECK_THROWS_AS(json(std::numeric_limits<std::uint64_t>::max()), argument_error);
    json number(1);
    CHECK_THROWS_AS(number.set("k", 1), argument_error);
    CHECK_THROWS_AS(number.push_back(1), argument_error);
}

TEST_CASE("json_view: typed access with path-like error messages") {
    const json doc = json::parse(R"({"0.weight":{"shape":[3,"x"],"dtype":"F32"},"n":-1,"r":0.5,"ok":true})", "t");
    const json_view header(doc, "m.safetensors: header");
    CHECK(header["0.weight"]["shape"].elements()[0].as_int() == 3);
    CHECK(header["0.weight"]["dtype"].as_string() == "F32");
    CHECK(header["r"].as_double() == 0.5);
    CHECK(header["n"].as_double() == -1.0);
    CHECK(header["ok"].as_bool());
    CHECK(header.members().size() == 4);
    CHECK(header.members()[1].first == "n");
    CHECK(!header.find("absent").has_value());

    CHECK(view_error([&] { header["0.weight"]["shape"].elements()[1].as_int(); }) ==
          "m.safetensors: header.'0.weight'.shape[1]: expected an integer, found a string");
    CHECK(view_error([&] { header["r"].as_int(); }) ==
          "m.safetensors: header.r: expected an integer, found a non-integer number");
    CHECK(view_error([&] { header["n"].as_int_at_least(0); }) ==
          "m.safetensors: header.n: expected an integer >= 0, found -1");
    CHECK(view_error([&] { header["absent"]; }) == "m.safetensors: header: missing key \"absent\"");
    CHECK(view_error([&] { header["ok"].elements(); }) == "m.safetensors: header.ok: expected an array, found a boolean");
    CHECK(view_error([&] { header["n"].find("x"); }) == "m.safetensors: header.n: expected an object, found an integer");
    CHECK(view_error([&] { header["0.weight"].expect_only_keys({"shape"}); }) ==
          "m.safetensors: header.'0.weight': unexpected key \"dtype\" (allowed: \"shape\")");
    CHECK(view_error([&] { header["0.weight"].expect_only_keys({"shape", "dtype"}); }).empty());
}
