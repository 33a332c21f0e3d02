#include "nnmark/core/json.hpp"

#include "../support/errors.hpp"
#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace nnmark;
using testing::thrown_message;

namespace {

// The message of the format_error that parsing `text` throws ("" if it parses).
std::string parse_error(std::string_view text) {
    return thrown_message<format_error>([&] { parse_json(text, "test.json"); });
}

// The message of the format_error that `access` to a json_view throws ("" if none).
template <class Access>
std::string view_error(Access access) {
    return thrown_message<format_error>(access);
}

// The values whose dumps by the engine's own JSON value, before nlohmann, are the lines of
// tests/core/json_golden.txt: doubles across all magnitudes, integers at the 64-bit limits,
// every ASCII character, multi-byte UTF-8, nested objects and arrays.
std::vector<json> golden_values() {
    std::vector<json> lines;
    using lim = std::numeric_limits<double>;
    json hand = json::array();
    for (double d : {0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 1e-7, 1.5e-5, 1e-5, 1e-4, 1.5e-4,
                     0.001, 0.0001234, 1e15, 1e16, 1e17, 1e20, 1e21, 1e22, 1e23, 123456789012345678.0,
                     9007199254740992.0, 9007199254740994.0, 9223372036854775808.0, 18446744073709551616.0,
                     4.9406564584124654e-324, 1e-323, 2.2250738585072009e-308, 2.2250738585072014e-308,
                     lim::max(), lim::lowest(), lim::epsilon(), 3.141592653589793, 2.718281828459045,
                     100.0, 1234567.0, 12345678901234567890.0, 0.000001, 0.0000001, 5e-7, 123.456, 1e100,
                     -1e-100, 1.7976931348623157e308, double(0.1f), double(1e-3f), double(3.4028235e38f),
                     double(1.17549435e-38f), double(1.4e-45f), 65504.0, 0.9, 0.99, 0.999, 0.9999999999999999})
        hand.push_back(d);
    lines.push_back(hand);
    // Every decimal exponent with three mantissas, alternating signs.
    for (const char* m : {"1", "1.5", "1.2345678901234567"}) {
        json line = json::array();
        for (int e = -324; e <= 308; ++e) {
            const double d = std::strtod((std::string(m) + "e" + std::to_string(e)).c_str(), nullptr);
            if (std::isfinite(d)) line.push_back(e % 2 ? -d : d);
        }
        lines.push_back(line);
    }
    json powers = json::array();
    for (int e = -1074; e <= 1023; e += 7) powers.push_back(std::ldexp(1.0, e));
    lines.push_back(powers);
    // Random bit patterns, random floats widened to double, random numbers in [0, 1).
    std::uint64_t state = 18;
    const auto next = [&state] {  // splitmix64
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    json bits = json::array(), floats = json::array(), unit = json::array();
    while (bits.size() < 600) {
        const std::uint64_t r = next();
        double d;
        std::memcpy(&d, &r, sizeof d);
        if (std::isfinite(d)) bits.push_back(d);
    }
    while (floats.size() < 300) {
        const auto r = static_cast<std::uint32_t>(next());
        float f;
        std::memcpy(&f, &r, sizeof f);
        if (std::isfinite(f)) floats.push_back(double(f));
    }
    for (int i = 0; i < 300; ++i) unit.push_back(static_cast<double>(next() >> 11) * 0x1.0p-53);
    lines.push_back(bits);
    lines.push_back(floats);
    lines.push_back(unit);
    json integers = json::array();
    using il = std::numeric_limits<std::int64_t>;
    for (std::int64_t i : {il::min(), il::min() + 1, il::max(), il::max() - 1, std::int64_t(0), std::int64_t(-1),
                           std::int64_t(1), std::int64_t(9007199254740992), std::int64_t(9007199254740993),
                           std::int64_t(-9007199254740993), std::int64_t(4294967296), std::int64_t(-2147483648)})
        integers.push_back(i);
    integers.push_back(std::uint64_t(il::max()));
    integers.push_back(std::uint32_t(4294967295u));
    integers.push_back(-7);
    lines.push_back(integers);
    json strings = json::array();
    std::string ascii;
    for (int c = 0; c < 128; ++c) ascii.push_back(static_cast<char>(c));
    strings.push_back(ascii);
    for (int c = 0; c < 0x20; ++c) strings.push_back(std::string(1, static_cast<char>(c)));
    strings.push_back("\x7f");
    strings.push_back("quote \" backslash \\ slash / tab \t");
    strings.push_back("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xC2\x80\xE0\xA0\x80\xF0\x90\x80\x80");
    strings.push_back(std::string("a\0b", 3));
    strings.push_back("");
    strings.push_back("\xE2\x80\xA8\xE2\x80\xA9");  // U+2028, U+2029
    lines.push_back(strings);
    json doc = json::object();
    doc[""] = json::object();
    doc["a b"] = json::array();
    doc["0.weight"] = nullptr;
    doc["\xC3\xA9\n\"k\""] = true;
    doc["f"] = false;
    json inner = json::object();
    inner["z"] = 1;
    inner["a"] = 2.5;
    inner["m"] = json::array();
    json nested = json::array();
    nested.push_back(1e-5);
    for (int i = 0; i < 20; ++i) nested = json::array({nested, i});
    inner["deep"] = json::array({nested});
    doc["inner"] = inner;
    json list = json::array();
    for (int i = 0; i < 3; ++i) list.push_back(json::object({{"i", i}, {"x", i * 0.25}}));
    doc["list"] = list;
    lines.push_back(doc);
    return lines;
}

}  // namespace

TEST_CASE("json: dump writes byte for byte what the engine wrote before nlohmann (golden file)") {
    std::istringstream golden(testing::slurp(testing::source_dir() / "tests" / "core" / "json_golden.txt"));
    const std::vector<json> values = golden_values();
    std::size_t n = 0;
    for (std::string line; std::getline(golden, line); ++n) {
        REQUIRE(n < values.size());
        CAPTURE(n);
        CHECK(dump_json(values[n]) == line);
        CHECK(dump_json(parse_json(line, "json_golden.txt")) == line);  // read back, written again
        CHECK(parse_json(line, "json_golden.txt") == values[n]);
    }
    CHECK(n == values.size());
    // Where nlohmann's own dump() differs (why the engine never calls it): 1e-04, and a
    // 19-digit grisu2 text where 17 digits are the shortest.
    CHECK(dump_json(json(1e-4)) == "1e-04");
    CHECK(json(1e-4).dump() == "0.0001");
    CHECK(dump_json(json(123456789012345678.0)) == "123456789012345680.0");
    CHECK(json(123456789012345678.0).dump() == "1.2345678901234568e+17");
}

TEST_CASE("json: parses every kind of value") {
    const json v = parse_json(R"( {"n": null, "t": true, "f": false, "i": -42, "d": 2.5e-3,
                                    "s": "a\"b\\c\/\n\t\u00e9\ud83d\ude00", "a": [1, [2], {}], "o": {"x": []}} )",
                              "test.json");
    REQUIRE(v.is_object());
    CHECK(v.at("n").is_null());
    CHECK(v.at("t") == true);
    CHECK(v.at("f") == false);
    CHECK(v.at("i").get<std::int64_t>() == -42);
    CHECK(v.at("d").is_number_float());
    CHECK(v.at("d").get<double>() == 2.5e-3);
    CHECK(v.at("s") == "a\"b\\c/\n\t\xC3\xA9\xF0\x9F\x98\x80");
    CHECK(v.at("a").size() == 3);
    CHECK(v.at("o").at("x").is_array());
    CHECK(!v.contains("missing"));
}

TEST_CASE("json: integers stay exact beyond 2^53, other numbers are doubles") {
    const json v = parse_json("[9007199254740993, -9223372036854775808, 9223372036854775807, 1.0, 1e2, "
                              "18446744073709551615, 18446744073709551616, -0, 5]",
                              "test.json");
    CHECK(v[0].get<std::int64_t>() == 9007199254740993LL);  // 2^53 + 1: a double would round it
    CHECK(v[1].get<std::int64_t>() == std::numeric_limits<std::int64_t>::min());
    CHECK(v[2].get<std::int64_t>() == std::numeric_limits<std::int64_t>::max());
    CHECK(v[3].is_number_float());
    CHECK(v[4].get<double>() == 100.0);
    CHECK(v[4].is_number_float());
    CHECK(v[5].get<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());  // unsigned above int64
    CHECK(v[6].is_number_float());  // beyond 64 bits: a double
    CHECK(v[6].get<double>() == 18446744073709551616.0);
    CHECK(v[7].get<std::int64_t>() == 0);
    // nlohmann reads non-negative integers as unsigned; parse_json keeps them signed when they fit.
    CHECK(v[8].is_number_integer());
    CHECK(!v[8].is_number_unsigned());
    CHECK(dump_json(v) == "[9007199254740993,-9223372036854775808,9223372036854775807,1.0,100.0,"
                          "18446744073709551615,18446744073709551616.0,0,5]");
}

TEST_CASE("json: dump is compact, escapes properly and parses back to an equal value") {
    json o = json::object();
    o["name"] = "conv \"1\"\n\x01/\xC3\xA9";
    o["int"] = 9007199254740993LL;
    o["real"] = 0.1;
    o["whole"] = 2.0;
    o["tiny"] = 4.9406564584124654e-324;
    o["neg"] = -1.5e300;
    json list = json::array();
    list.push_back(nullptr);
    list.push_back(true);
    list.push_back(json::object());
    o["list"] = list;
    o["int"] = 7;  // replaces in place, order kept
    const std::string text = dump_json(o);
    CHECK(text ==
          "{\"name\":\"conv \\\"1\\\"\\n\\u0001/\xC3\xA9\",\"int\":7,\"real\":0.1,\"whole\":2.0,"
          "\"tiny\":5e-324,\"neg\":-1.5e+300,\"list\":[null,true,{}]}");
    const json back = parse_json(text, "dumped");
    CHECK(back == o);
    CHECK(back.at("whole").is_number_float());  // "2.0" does not come back as an integer
    CHECK(dump_json(back) == text);
}

TEST_CASE("json: object members keep insertion order") {
    const json v = parse_json(R"({"z":1,"a":2,"m":3})", "test.json");
    REQUIRE(v.size() == 3);
    auto it = v.begin();
    CHECK(it.key() == "z");
    CHECK((++it).key() == "a");
    CHECK((++it).key() == "m");
    CHECK(dump_json(v) == R"({"z":1,"a":2,"m":3})");
}

TEST_CASE("json: syntax errors name the source and the byte offset") {
    CHECK(parse_error("") == "test.json: invalid JSON at byte 0: syntax error while parsing value - unexpected end "
                             "of input; expected '[', '{', or a literal");
    CHECK(parse_error("{\"a\":1} x") ==
          "test.json: invalid JSON at byte 8: syntax error while parsing value - invalid literal; expected end of input");
    CHECK(parse_error("[1,]") ==
          "test.json: invalid JSON at byte 3: syntax error while parsing value - unexpected ']'; expected '[', '{', or "
          "a literal");
    CHECK(parse_error("[1 2]") ==
          "test.json: invalid JSON at byte 3: syntax error while parsing array - unexpected number literal; expected ']'");
    CHECK(parse_error("{\"a\" 1}") == "test.json: invalid JSON at byte 5: syntax error while parsing object separator - "
                                      "unexpected number literal; expected ':'");
    CHECK(parse_error("{1:2}") == "test.json: invalid JSON at byte 1: syntax error while parsing object key - "
                                  "unexpected number literal; expected string literal");
    CHECK(parse_error("{\"a\":1,}") == "test.json: invalid JSON at byte 7: syntax error while parsing object key - "
                                       "unexpected '}'; expected string literal");
    CHECK(parse_error("tru") == "test.json: invalid JSON at byte 3: syntax error while parsing value - invalid literal");
    CHECK(parse_error("01") == "test.json: invalid JSON at byte 1: syntax error while parsing value - unexpected "
                               "number literal; expected end of input");
    CHECK(parse_error("-") ==
          "test.json: invalid JSON at byte 1: syntax error while parsing value - invalid number; expected digit after '-'");
    CHECK(parse_error("1.") ==
          "test.json: invalid JSON at byte 2: syntax error while parsing value - invalid number; expected digit after '.'");
    CHECK(parse_error("1e+") == "test.json: invalid JSON at byte 3: syntax error while parsing value - invalid number; "
                                "expected digit after exponent sign");
    CHECK(parse_error(".5") == "test.json: invalid JSON at byte 0: syntax error while parsing value - invalid literal");
    CHECK(parse_error("1e400") == "test.json: invalid JSON at byte 4: number overflow parsing '1e400'");
    CHECK(parse_error("NaN") == "test.json: invalid JSON at byte 0: syntax error while parsing value - invalid literal");
    CHECK(parse_error("/* c */ 1") ==
          "test.json: invalid JSON at byte 0: syntax error while parsing value - invalid literal");
    // What nlohmann would accept: its lexer ends the input at a NUL, and it skips a byte order mark.
    CHECK(parse_error(std::string_view("[1]\0", 4)) ==
          "test.json: invalid JSON at byte 3: unexpected byte 0x00 after the end of the value");
    CHECK(parse_error(std::string_view("[1] \0 [2]", 9)) ==
          "test.json: invalid JSON at byte 4: unexpected byte 0x00 after the end of the value");
    CHECK(parse_error("\xEF\xBB\xBF[1]") == "test.json: invalid JSON at byte 0: unexpected byte order mark");
}

TEST_CASE("json: string errors: escapes, control characters, UTF-8, surrogates") {
    const std::string prefix = "syntax error while parsing value - invalid string: ";
    CHECK(parse_error("\"abc") == "test.json: invalid JSON at byte 4: " + prefix + "missing closing quote");
    // The message leaves out nlohmann's "last read" token, which can be a whole string of raw bytes.
    CHECK(parse_error("\"" + std::string(100000, 'x')).size() < 200);
    CHECK(parse_error("\"a\\x\"") == "test.json: invalid JSON at byte 3: " + prefix + "forbidden character after backslash");
    CHECK(parse_error("\"a\\u12g4\"") ==
          "test.json: invalid JSON at byte 6: " + prefix + "'\\u' must be followed by 4 hex digits");
    CHECK(parse_error("\"a\tb\"") == "test.json: invalid JSON at byte 2: " + prefix +
                                         "control character U+0009 (HT) must be escaped to \\u0009 or \\t");
    const std::string utf8 = prefix + "ill-formed UTF-8 byte";
    CHECK(parse_error("\"\xC3\"") == "test.json: invalid JSON at byte 2: " + utf8);
    CHECK(parse_error("\"\xC0\xAF\"") == "test.json: invalid JSON at byte 1: " + utf8);          // overlong '/'
    CHECK(parse_error("\"\xED\xA0\x80\"") == "test.json: invalid JSON at byte 2: " + utf8);      // a surrogate
    CHECK(parse_error("\"\xF4\x90\x80\x80\"") == "test.json: invalid JSON at byte 2: " + utf8);  // above U+10FFFF
    CHECK(parse_error("[\"\xFF\"]") == "test.json: invalid JSON at byte 2: " + utf8);
    CHECK(parse_error("\"x\\udc00\"") ==
          "test.json: invalid JSON at byte 7: " + prefix + "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF");
    CHECK(parse_error("\"x\\ud800y\"") ==
          "test.json: invalid JSON at byte 8: " + prefix + "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
    CHECK(parse_error("\"x\\ud800\\u0041\"") ==
          "test.json: invalid JSON at byte 13: " + prefix + "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
    CHECK(parse_error("\"\\u0000\"").empty());  // an escaped NUL is a valid string character
    CHECK(parse_json("\"\\u0000\"", "t") == std::string(1, '\0'));
}

TEST_CASE("json: duplicate keys are rejected with both offsets") {
    CHECK(parse_error(R"({"a":1,"b":2,"a":3})") ==
          "test.json: invalid JSON at byte 13: duplicate key \"a\" (first at byte 1)");
    CHECK(parse_error(R"({"a":{"b":1,"b":1}})") ==
          "test.json: invalid JSON at byte 12: duplicate key \"b\" (first at byte 6)");
    // The offset is the key's opening quote, also when the key ends in escaped quotes or backslashes.
    CHECK(parse_error(R"({"x\\":1, "x\\" :2})") ==
          "test.json: invalid JSON at byte 10: duplicate key \"x\\\" (first at byte 1)");
    CHECK(parse_error(R"({"\"":1,"\"":2})") == "test.json: invalid JSON at byte 8: duplicate key \"\"\" (first at byte 1)");
    // Equal after unescaping is equal.
    CHECK(parse_error(R"({"a":1,"\u0061":2})") ==
          "test.json: invalid JSON at byte 7: duplicate key \"a\" (first at byte 1)");
    // The same key in different objects is fine.
    CHECK(parse_error(R"([{"a":1},{"a":2}])").empty());
}

TEST_CASE("json: nesting depth is limited instead of exhausting the stack") {
    const auto nested = [](std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); };
    CHECK(parse_error(nested(json_max_depth)).empty());
    CHECK(parse_error(nested(json_max_depth + 1)) == "test.json: invalid JSON at byte 256: nesting deeper than 256 levels");
    CHECK(parse_error(std::string(1000000, '[')) == "test.json: invalid JSON at byte 256: nesting deeper than 256 levels");
    std::string objects;
    for (int i = 0; i < 1000; ++i) objects += "{\"k\":";
    CHECK(parse_error(objects) == "test.json: invalid JSON at byte 1280: nesting deeper than 256 levels");
}

TEST_CASE("json: dump rejects what JSON cannot carry") {
    CHECK_THROWS_AS(dump_json(json(std::numeric_limits<double>::quiet_NaN())), argument_error);
    CHECK_THROWS_AS(dump_json(json(std::numeric_limits<double>::infinity())), argument_error);
    CHECK_THROWS_AS(dump_json(json(std::string("\xFF"))), argument_error);
    CHECK_THROWS_AS(dump_json(json::binary({1, 2})), argument_error);
    CHECK(dump_json(json(std::numeric_limits<std::uint64_t>::max())) == "18446744073709551615");
}

TEST_CASE("json_view: typed access with path-like error messages") {
    const json doc = parse_json(R"({"0.weight":{"shape":[3,"x"],"dtype":"F32"},"n":-1,"r":0.5,"ok":true,)"
                                R"("big":9223372036854775808})",
                                "t");
    const json_view header(doc, "m.safetensors: header");
    CHECK(header["0.weight"]["shape"].elements()[0].as_int() == 3);
    CHECK(header["0.weight"]["dtype"].as_string() == "F32");
    CHECK(header["r"].as_double() == 0.5);
    CHECK(header["n"].as_double() == -1.0);
    CHECK(header["ok"].as_bool());
    CHECK(header.members().size() == 5);
    CHECK(header.members()[1].first == "n");
    CHECK(!header.find("absent").has_value());
    const json built = json::object({{"size", std::size_t{5}}});  // nlohmann keeps it unsigned
    CHECK(json_view(built, "built")["size"].as_int() == 5);

    CHECK(view_error([&] { header["0.weight"]["shape"].elements()[1].as_int(); }) ==
          "m.safetensors: header.'0.weight'.shape[1]: expected an integer, found a string");
    CHECK(view_error([&] { header["r"].as_int(); }) ==
          "m.safetensors: header.r: expected an integer, found a non-integer number");
    CHECK(view_error([&] { header["big"].as_int(); }) ==
          "m.safetensors: header.big: expected an integer of 64 signed bits, found 9223372036854775808");
    CHECK(view_error([&] { header["n"].as_int_at_least(0); }) ==
          "m.safetensors: header.n: expected an integer >= 0, found -1");
    CHECK(view_error([&] { header["ok"].as_double(); }) == "m.safetensors: header.ok: expected a number, found a boolean");
    CHECK(view_error([&] { header["absent"]; }) == "m.safetensors: header: missing key \"absent\"");
    CHECK(view_error([&] { header["ok"].elements(); }) == "m.safetensors: header.ok: expected an array, found a boolean");
    CHECK(view_error([&] { header["n"].find("x"); }) == "m.safetensors: header.n: expected an object, found an integer");
    CHECK(view_error([&] { header["0.weight"].expect_only_keys({"shape"}); }) ==
          "m.safetensors: header.'0.weight': unexpected key \"dtype\" (allowed: \"shape\")");
    CHECK(view_error([&] { header["0.weight"].expect_only_keys({"shape", "dtype"}); }).empty());
}
