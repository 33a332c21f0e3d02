// json: a small, strict JSON value (RFC 8259) for model and key file headers.
//
// Contract:
// - A value is null, a boolean, a number, a string (UTF-8), an array or an object.
//   Objects keep their members in insertion order, so what is written is what is read.
// - Numbers written without fraction or exponent that fit in 64 bits ("123", "-7")
//   are kept as exact std::int64_t: safetensors data offsets exceed 2^53, where a
//   double would silently round. Every other number is a double.
// - json::parse() accepts exactly one JSON value surrounded by optional whitespace and
//   throws format_error("<source>: invalid JSON at byte <offset>: ...") for anything
//   else: trailing garbage, invalid escapes, raw control characters, invalid UTF-8 or
//   unpaired surrogates, duplicate object keys, numbers out of range, and nesting
//   deeper than json::max_depth (which would otherwise exhaust the stack).
// - dump() writes compact JSON that parse() reads back as an equal value; a double
//   always carries a '.' or an exponent ("1.0"), so it does not come back as an integer.
// - json_view pairs a value with its path in the document ("header.'0.weight'.shape[1]")
//   and its typed accessors throw format_error("<path>: expected an integer, found a
//   string"), so file readers report where a file is wrong without bookkeeping.
#pragma once

#include "nnmark/core/error.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace nnmark {

class json {
public:
    using array_t = std::vector<json>;
    using member_t = std::pair<std::string, json>;
    using object_t = std::vector<member_t>;

    // Deeper documents are rejected: each level costs a few stack frames when parsing.
    static constexpr int max_depth = 256;

    json() = default;
    json(std::nullptr_t) {}
    json(bool b) : value_(b) {}
    template <std::integral I>
        requires(!std::same_as<I, bool>)
    json(I i) : value_(to_int64(i)) {}
    json(double d) : value_(d) {}
    json(std::string s) : value_(std::move(s)) {}
    json(std::string_view s) : value_(std::string(s)) {}
    json(const char* s) : value_(std::string(s)) {}
    json(array_t a) : value_(std::move(a)) {}
    json(object_t o) : value_(std::move(o)) {}

    static json array() { return json(array_t{}); }
    static json object() { return json(object_t{}); }

    // One JSON text; `source` (a file name, "architecture") prefixes every error message.
    static json parse(std::string_view text, std::string_view source);

    bool is_null() const { return std::holds_alternative<std::nullptr_t>(value_); }
    bool is_bool() const { return std::holds_alternative<bool>(value_); }
    bool is_integer() const { return std::holds_alternative<std::int64_t>(value_); }
    bool is_number() const { return is_integer() || std::holds_alternative<double>(value_); }
    bool is_string() const { return std::holds_alternative<std::string>(value_); }
    bool is_array() const { return std::holds_alternative<array_t>(value_); }
    bool is_object() const { return std::holds_alternative<object_t>(value_); }

    // The value if it has that type, else nullptr: the unchecked primitives under json_view.
    const bool* if_bool() const { return std::get_if<bool>(&value_); }
    const std::int64_t* if_integer() const { return std::get_if<std::int64_t>(&value_); }
    const double* if_double() const { return std::get_if<double>(&value_); }
    const std::string* if_string() const { return std::get_if<std::string>(&value_); }
    const array_t* if_array() const { return std::get_if<array_t>(&value_); }
    const object_t* if_object() const { return std::get_if<object_t>(&value_); }

    // "an integer", "a string", ...: how error messages name what they found.
    std::string describe() const;

    // The member named `key` of an object, or nullptr (also when this is not an object).
    const json* find(std::string_view key) const {
        if (const object_t* o = if_object())
            for (const auto& [k, v] : *o)
                if (k == key) return &v;
        return nullptr;
    }

    // Building documents. set() replaces an existing member in place or appends a new one.
    // Both construct the new value in place from anything a json is constructible from:
    // moving a just-built temporary json trips GCC 12's -Wmaybe-uninitialized in std::variant.
    template <class V>
    json& set(std::string key, V&& value) {
        object_t& o = as_mutable<object_t>("json::set");
        for (auto& [k, v] : o)
            if (k == key) return v = json(std::forward<V>(value));
        return o.emplace_back(std::piecewise_construct, std::forward_as_tuple(std::move(key)),
                              std::forward_as_tuple(std::forward<V>(value)))
            .second;
    }
    template <class V>
    json& push_back(V&& value) {
        return as_mutable<array_t>("json::push_back").emplace_back(std::forward<V>(value));
    }

    // Compact JSON text. Throws argument_error for NaN/infinity and invalid UTF-8,
    // which JSON cannot carry.
    std::string dump() const {
        std::string out;
        dump_to(out);
        return out;
    }

    friend bool operator==(const json& a, const json& b) { return a.value_ == b.value_; }

private:
    template <std::integral I>
    static std::int64_t to_int64(I i) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (i > static_cast<std::make_unsigned_t<std::int64_t>>(std::numeric_limits<std::int64_t>::max()))
                throw argument_error("json: integer " + std::to_string(i) + " does not fit in 64 signed bits");
        }
        return static_cast<std::int64_t>(i);
    }

    template <class Alternative>
    Alternative& as_mutable(const char* what) {
        if (auto* p = std::get_if<Alternative>(&value_)) return *p;
        throw argument_error(std::string(what) + ": this value is " + describe());
    }

    void dump_to(std::string& out) const;

    std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, array_t, object_t> value_;
};

namespace detail::json_text {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if it is invalid:
// overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code points past U+10FFFF
// are all invalid, as RFC 3629 says.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    std::size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) length = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3;
        if (b0 == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
        if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4;
        if (b0 == 0xF0) lo = 0x90;  // no overlong 4-byte forms
        if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (i + length > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < length; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return length;
}

inline void append_utf8(std::string& out, std::uint32_t code_point) {
    const auto put = [&](std::uint32_t b) { out.push_back(static_cast<char>(b)); };
    if (code_point < 0x80) {
        put(code_point);
    } else if (code_point < 0x800) {
        put(0xC0 | (code_point >> 6));
        put(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        put(0xE0 | (code_point >> 12));
        put(0x80 | ((code_point >> 6) & 0x3F));
        put(0x80 | (code_point & 0x3F));
    } else {
        put(0xF0 | (code_point >> 18));
        put(0x80 | ((code_point >> 12) & 0x3F));
        put(0x80 | ((code_point >> 6) & 0x3F));
        put(0x80 | (code_point & 0x3F));
    }
}

inline void append_quoted(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            if (n == 0)
                throw argument_error("json::dump: string has invalid UTF-8 at byte " + std::to_string(i));
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 0xF]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out.push_back('"');
}

// Shortest text that reads back as the same double, with ".0" added to whole numbers.
inline void append_double(std::string& out, double d) {
    if (!std::isfinite(d)) throw argument_error("json::dump: JSON has no representation for " + std::to_string(d));
    char buffer[32];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
    const std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
    out.append(text);
    if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

// Recursive-descent parser over the whole text; `pos_` is the byte offset of errors.
class parser {
public:
    parser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    json parse_document() {
        skip_whitespace();
        json value = parse_value(0);
        skip_whitespace();
        if (pos_ != text_.size()) fail("unexpected " + found() + " after the end of the value");
        return value;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw format_error(std::string(source_) + ": invalid JSON at byte " + std::to_string(pos_) + ": " + what);
    }

    // The character at pos_, quoted for a message, or "end of input".
    std::string found() const {
        if (pos_ >= text_.size()) return "end of input";
        const auto c = static_cast<unsigned char>(text_[pos_]);
        if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
        static constexpr char hex[] = "0123456789abcdef";
        return std::string("byte 0x") + hex[c >> 4] + hex[c & 0xF];
    }

    bool at_end() const { return pos_ >= text_.size(); }
    // '\0' at the end, which no grammar rule below accepts.
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    void skip_whitespace() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
    }

    void expect(char c, const char* context) {
        if (at_end() || peek() != c) fail(std::string("expected '") + c + "' " + context + ", found " + found());
        ++pos_;
    }

    json parse_value(int depth) {
        if (depth > json::max_depth) fail("nesting deeper than " + std::to_string(json::max_depth) + " levels");
        switch (peek()) {
            case '{': return parse_object(depth);
            case '[': return parse_array(depth);
            case '"': return json(parse_string());
            case 't': return parse_literal("true", json(true));
            case 'f': return parse_literal("false", json(false));
            case 'n': return parse_literal("null", json());
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
                fail("expected a value, found " + found());
        }
    }

    json parse_literal(std::string_view word, json value) {
        if (text_.substr(pos_, word.size()) != word) fail("expected a value, found " + found());
        pos_ += word.size();
        return value;
    }

    json parse_object(int depth) {
        const std::size_t start = pos_;
        ++pos_;  // '{'
        json::object_t members;
        skip_whitespace();
        if (peek() == '}') {
            ++pos_;
            return json(std::move(members));
        }
        std::vector<std::size_t> key_offsets;
        while (true) {
            skip_whitespace();
            if (peek() != '"') fail("expected a string key in the object starting at byte " + std::to_string(start) + ", found " + found());
            key_offsets.push_back(pos_);
            std::string key = parse_string();
            skip_whitespace();
            expect(':', "after an object key");
            skip_whitespace();
            json value = parse_value(depth + 1);
            members.emplace_back(std::move(key), std::move(value));
            skip_whitespace();
            if (peek() == '}') break;
            if (peek() != ',') fail("expected ',' or '}' in the object starting at byte " + std::to_string(start) + ", found " + found());
            ++pos_;
        }
        ++pos_;  // '}'
        reject_duplicate_keys(members, key_offsets);
        return json(std::move(members));
    }

    // Sorting indices keeps this O(n log n) for headers with thousands of tensors.
    void reject_duplicate_keys(const json::object_t& members, const std::vector<std::size_t>& key_offsets) {
        std::vector<std::size_t> order(members.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return members[a].first < members[b].first; });
        for (std::size_t i = 1; i < order.size(); ++i) {
            if (members[order[i]].first == members[order[i - 1]].first) {
                pos_ = key_offsets[order[i]];
                fail("duplicate key \"" + members[order[i]].first + "\" (first at byte " +
                     std::to_string(key_offsets[order[i - 1]]) + ")");
            }
        }
    }

    json parse_array(int depth) {
        const std::size_t start = pos_;
        ++pos_;  // '['
        json::array_t elements;
        skip_whitespace();
        if (peek() == ']') {
            ++pos_;
            return json(std::move(elements));
        }
        while (true) {
            skip_whitespace();
            elements.push_back(parse_value(depth + 1));
            skip_whitespace();
            if (peek() == ']') break;
            if (peek() != ',') fail("expected ',' or ']' in the array starting at byte " + std::to_string(start) + ", found " + found());
            ++pos_;
        }
        ++pos_;  // ']'
        return json(std::move(elements));
    }

    std::string parse_string() {
        const std::size_t start = pos_;
        ++pos_;  // '"'
        std::string out;
        while (true) {
            if (at_end()) {
                pos_ = start;
                fail("string is not terminated");
            }
            const auto c = static_cast<unsigned char>(text_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c == '\\') {
                parse_escape(out);
            } else if (c < 0x20) {
                fail("raw control character " + found() + " in a string (write it as an escape)");
            } else if (c < 0x80) {
                out.push_back(static_cast<char>(c));
                ++pos_;
            } else {
                const std::size_t n = utf8_sequence_length(text_, pos_);
                if (n == 0) fail("invalid UTF-8 in a string");
                out.append(text_.substr(pos_, n));
                pos_ += n;
            }
        }
    }

    void parse_escape(std::string& out) {
        ++pos_;  // '\'
        const char c = peek();
        if (at_end()) fail("string is not terminated");
        switch (c) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                const std::size_t escape_start = pos_ - 1;
                ++pos_;
                append_utf8(out, parse_code_point(escape_start));
                return;
            }
            default: fail("invalid escape \\" + found().substr(1, 1) + " in a string");
        }
        ++pos_;
    }

    // After "\u": four hex digits, and for a high surrogate the "\uXXXX" low half.
    std::uint32_t parse_code_point(std::size_t escape_start) {
        const std::uint32_t first = parse_hex4();
        if (first >= 0xDC00 && first <= 0xDFFF) {
            pos_ = escape_start;
            fail("unpaired low surrogate \\u" + std::string(text_.substr(escape_start + 2, 4)));
        }
        if (first < 0xD800 || first > 0xDBFF) return first;
        if (text_.substr(pos_, 2) != "\\u") {
            pos_ = escape_start;
            fail("high surrogate \\u" + std::string(text_.substr(escape_start + 2, 4)) + " is not followed by a low surrogate");
        }
        pos_ += 2;
        const std::uint32_t second = parse_hex4();
        if (second < 0xDC00 || second > 0xDFFF) {
            pos_ = escape_start;
            fail("high surrogate \\u" + std::string(text_.substr(escape_start + 2, 4)) + " is not followed by a low surrogate");
        }
        return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
    }

    std::uint32_t parse_hex4() {
        std::uint32_t value = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = peek();
            std::uint32_t digit;
            if (c >= '0' && c <= '9') digit = static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') digit = static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') digit = static_cast<std::uint32_t>(c - 'A' + 10);
            else fail("expected 4 hex digits after \\u, found " + found());
            value = value * 16 + digit;
            ++pos_;
        }
        return value;
    }

    // RFC 8259 grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    json parse_number() {
        const std::size_t start = pos_;
        const auto digits = [&] {
            const std::size_t from = pos_;
            while (peek() >= '0' && peek() <= '9') ++pos_;
            return pos_ - from;
        };
        if (peek() == '-') ++pos_;
        if (peek() == '0') {
            ++pos_;
            if (peek() >= '0' && peek() <= '9') fail("leading zero in a number");
        } else if (digits() == 0) {
            fail("expected a digit, found " + found());
        }
        bool integral = true;
        if (peek() == '.') {
            integral = false;
            ++pos_;
            if (digits() == 0) fail("expected a digit after '.', found " + found());
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (digits() == 0) fail("expected a digit in the exponent, found " + found());
        }
        const char* first = text_.data() + start;
        const char* last = text_.data() + pos_;
        if (integral) {
            std::int64_t i = 0;
            const auto [end, ec] = std::from_chars(first, last, i);
            if (ec == std::errc() && end == last) return json(i);
            // Too large for 64 bits: still a valid JSON number, kept as a double.
        }
        double d = 0;
        const auto [end, ec] = std::from_chars(first, last, d);
        if (ec != std::errc() || end != last || !std::isfinite(d)) {
            pos_ = start;
            fail("number " + std::string(first, last) + " is out of the range of a double");
        }
        return json(d);
    }

    std::string_view text_;
    std::string_view source_;
    std::size_t pos_ = 0;
};

}  // namespace detail::json_text

inline json json::parse(std::string_view text, std::string_view source) {
    return detail::json_text::parser(text, source).parse_document();
}

inline std::string json::describe() const {
    struct namer {
        std::string operator()(std::nullptr_t) const { return "null"; }
        std::string operator()(bool) const { return "a boolean"; }
        std::string operator()(std::int64_t) const { return "an integer"; }
        std::string operator()(double) const { return "a non-integer number"; }
        std::string operator()(const std::string&) const { return "a string"; }
        std::string operator()(const array_t&) const { return "an array"; }
        std::string operator()(const object_t&) const { return "an object"; }
    };
    return std::visit(namer{}, value_);
}

inline void json::dump_to(std::string& out) const {
    using namespace detail::json_text;
    if (is_null()) {
        out += "null";
    } else if (const bool* b = if_bool()) {
        out += *b ? "true" : "false";
    } else if (const std::int64_t* i = if_integer()) {
        out += std::to_string(*i);
    } else if (const double* d = if_double()) {
        append_double(out, *d);
    } else if (const std::string* s = if_string()) {
        append_quoted(out, *s);
    } else if (const array_t* a = if_array()) {
        out.push_back('[');
        for (std::size_t k = 0; k < a->size(); ++k) {
            if (k) out.push_back(',');
            (*a)[k].dump_to(out);
        }
        out.push_back(']');
    } else {
        const object_t& o = *if_object();
        out.push_back('{');
        for (std::size_t k = 0; k < o.size(); ++k) {
            if (k) out.push_back(',');
            append_quoted(out, o[k].first);
            out.push_back(':');
            o[k].second.dump_to(out);
        }
        out.push_back('}');
    }
}

// A value of a parsed document together with its path, for checked access.
//
// The path starts with whatever names the document ("model.safetensors: header") and
// grows with each step: object keys as .name (or .'0.weight' when the key is not a
// plain identifier), array elements as [index]. The referenced json must outlive the view.
class json_view {
public:
    json_view(const json& value, std::string path) : value_(&value), path_(std::move(path)) {}

    const json& value() const { return *value_; }
    const std::string& path() const { return path_; }

    // Throws format_error "<path>: <message>".
    [[noreturn]] void fail(const std::string& message) const { throw format_error(path_ + ": " + message); }

    bool as_bool() const { return *checked(value_->if_bool(), "a boolean"); }
    std::int64_t as_int() const { return *checked(value_->if_integer(), "an integer"); }
    const std::string& as_string() const { return *checked(value_->if_string(), "a string"); }

    // An integer no smaller than `min` (e.g. 0 for sizes, 1 for kernel sizes).
    std::int64_t as_int_at_least(std::int64_t min) const {
        const std::int64_t i = as_int();
        if (i < min) fail("expected an integer >= " + std::to_string(min) + ", found " + std::to_string(i));
        return i;
    }

    // Any number; integers are converted (exactly up to 2^53).
    double as_double() const {
        if (const std::int64_t* i = value_->if_integer()) return static_cast<double>(*i);
        return *checked(value_->if_double(), "a number");
    }

    // Array elements with their paths.
    std::vector<json_view> elements() const {
        const json::array_t& a = *checked(value_->if_array(), "an array");
        std::vector<json_view> out;
        out.reserve(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) out.emplace_back(a[i], path_ + "[" + std::to_string(i) + "]");
        return out;
    }

    // Object members in document order: (key, view of the value).
    std::vector<std::pair<std::string_view, json_view>> members() const {
        const json::object_t& o = *checked(value_->if_object(), "an object");
        std::vector<std::pair<std::string_view, json_view>> out;
        out.reserve(o.size());
        for (const auto& [key, value] : o) out.emplace_back(key, json_view(value, member_path(key)));
        return out;
    }

    // The member `key` of an object, or nothing; throws if this is not an object.
    std::optional<json_view> find(std::string_view key) const {
        checked(value_->if_object(), "an object");
        if (const json* v = value_->find(key)) return json_view(*v, member_path(key));
        return std::nullopt;
    }

    // The member `key` of an object, which must be present.
    json_view operator[](std::string_view key) const {
        if (auto v = find(key)) return *v;
        fail("missing key \"" + std::string(key) + "\"");
    }

    // Throws unless every member key of this object is one of `allowed`.
    void expect_only_keys(std::initializer_list<std::string_view> allowed) const {
        for (const auto& [key, value] : members()) {
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
            std::string list;
            for (std::string_view a : allowed) list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
            fail("unexpected key \"" + std::string(key) + "\" (allowed: " + list + ")");
        }
    }

private:
    template <class V>
    const V* checked(const V* p, const char* expected) const {
        if (!p) fail(std::string("expected ") + expected + ", found " + value_->describe());
        return p;
    }

    std::string member_path(std::string_view key) const {
        const bool identifier =
            !key.empty() && !(key[0] >= '0' && key[0] <= '9') &&
            std::all_of(key.begin(), key.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
            });
        return identifier ? path_ + "." + std::string(key) : path_ + ".'" + std::string(key) + "'";
    }

    const json* value_;
    std::string path_;
};

}  // namespace nnmark
