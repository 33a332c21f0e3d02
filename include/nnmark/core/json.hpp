// json: the project's one JSON library, nlohmann::ordered_json, read strictly and written
// in one fixed text.
//
// nnmark::json is nlohmann::ordered_json, built and read with nlohmann's API
// (j["key"] = value, push_back, find, get<T>); the engine and the tool share it, so values
// pass between them as they are. nlohmann's defaults are not what model and key files
// need, so this header adds:
//
// - parse_json() accepts exactly one JSON value (RFC 8259) surrounded by optional whitespace
//   and throws format_error("<source>: invalid JSON at byte <offset>: ...") for anything
//   else: trailing garbage, invalid escapes, raw control characters, invalid UTF-8 or
//   unpaired surrogates, numbers out of range (nlohmann's strict lexer finds these), and
//   also what nlohmann accepts by default: duplicate object keys (it keeps the last one),
//   more than json_max_depth nested arrays and objects (its parser is iterative, but
//   every level costs a frame when a value is copied, compared or written), a byte order
//   mark and bytes after a NUL (its lexer ends the input at a NUL). Rejected documents
//   are never built: the checks run on nlohmann's SAX events.
// - Objects keep their members in document order (ordered_json), so what is written is
//   what is read. Integers written without fraction or exponent are kept exact in 64 bits
//   (safetensors data offsets exceed 2^53, where a double would round): as std::int64_t,
//   or std::uint64_t above its range. Every other number is a double.
// - dump_json() writes compact JSON that parse_json() reads back as an equal value. Its
//   text is fixed because key commitments hash a recipe's text and model files compare
//   architecture texts: a double is the shortest text std::to_chars finds, with ".0"
//   added to whole numbers so it does not come back as an integer ("2.0", "1e-05",
//   "123456789012345680.0"). nlohmann's own dump() writes other texts for some doubles
//   ("0.0001" for 1e-04, "1.2345678901234568e+17", and its grisu2 digits sometimes
//   differ in the last place), so the engine never calls it: tests/core/json_golden.txt
//   holds the texts the engine has always written. dump_json() throws argument_error
//   for NaN, infinity and invalid UTF-8, which nlohmann's dump() would write as null or
//   reject with its own exception.
// - json_view pairs a value with its path in the document ("header.'0.weight'.shape[1]")
//   and its typed accessors throw format_error("<path>: expected an integer, found a
//   string"), so file readers report where a file is wrong without bookkeeping.
#pragma once

#include "nnmark/core/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nnmark {

using json = nlohmann::ordered_json;

// Deeper documents are rejected (see above).
inline constexpr std::size_t json_max_depth = 256;

// "an integer", "a string", ...: how error messages name what they found.
inline std::string describe_json(const json& value) {
    switch (value.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a non-integer number";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        default: return "a binary value";
    }
}

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

inline void append_quoted(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            if (n == 0) throw argument_error("dump_json: string has invalid UTF-8 at byte " + std::to_string(i));
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
    if (!std::isfinite(d)) throw argument_error("dump_json: JSON has no representation for " + std::to_string(d));
    char buffer[32];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
    const std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
    out.append(text);
    if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

inline void dump_to(std::string& out, const json& value) {
    switch (value.type()) {
        case json::value_t::null: out += "null"; break;
        case json::value_t::boolean: out += value.get<bool>() ? "true" : "false"; break;
        case json::value_t::number_integer: out += std::to_string(value.get<std::int64_t>()); break;
        case json::value_t::number_unsigned: out += std::to_string(value.get<std::uint64_t>()); break;
        case json::value_t::number_float: append_double(out, value.get<double>()); break;
        case json::value_t::string: append_quoted(out, value.get_ref<const std::string&>()); break;
        case json::value_t::array: {
            out.push_back('[');
            bool first = true;
            for (const json& element : value) {
                if (!first) out.push_back(',');
                first = false;
                dump_to(out, element);
            }
            out.push_back(']');
            break;
        }
        case json::value_t::object: {
            out.push_back('{');
            bool first = true;
            for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
                if (!first) out.push_back(',');
                first = false;
                append_quoted(out, key);
                out.push_back(':');
                dump_to(out, member);
            }
            out.push_back('}');
            break;
        }
        default: throw argument_error("dump_json: JSON has no representation for " + describe_json(value));
    }
}

// nlohmann's SAX events carry no position. The parser reads the text through this
// iterator, so `read` always holds how many bytes its lexer has taken: the place of the
// '[', '{' or key it reports last.
class counting_iterator {
public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;

    counting_iterator(const char* at, std::size_t* read) : at_(at), read_(read) {}
    reference operator*() const { return *at_; }
    counting_iterator& operator++() {
        ++at_;
        ++*read_;
        return *this;
    }
    counting_iterator operator++(int) {
        counting_iterator before = *this;
        ++*this;
        return before;
    }
    friend bool operator==(const counting_iterator& a, const counting_iterator& b) { return a.at_ == b.at_; }

private:
    const char* at_;
    std::size_t* read_;
};

// Builds the document from nlohmann's SAX events, rejecting what parse_json() adds to
// nlohmann's checks before the value exists. Errors are thrown as format_error.
class strict_builder {
public:
    strict_builder(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    json parse() {
        if (text_.starts_with("\xEF\xBB\xBF")) fail(0, "unexpected byte order mark");
        json::sax_parse(counting_iterator(text_.data(), &read_), counting_iterator(text_.data() + text_.size(), &read_),
                        this);
        // A NUL ends nlohmann's input; within a string it is an error already.
        if (const std::size_t nul = text_.find('\0'); nul != std::string_view::npos)
            fail(nul, "unexpected byte 0x00 after the end of the value");
        return std::move(root_);
    }

    bool null() { return add(nullptr); }
    bool boolean(bool b) { return add(b); }
    bool number_integer(std::int64_t i) { return add(i); }
    // nlohmann reports every non-negative integer here; those that fit are kept signed,
    // so a parsed integer reads the same whatever its sign.
    bool number_unsigned(std::uint64_t u) {
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return add(static_cast<std::int64_t>(u));
        return add(u);
    }
    bool number_float(double d, const std::string&) { return add(d); }
    bool string(std::string& s) { return add(std::move(s)); }
    bool binary(json::binary_t&) { return false; }  // not produced by the JSON lexer

    bool start_object(std::size_t) { return open(json::object()); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_array() { return close(); }

    bool key(std::string& key) {
        std::vector<member>& members = open_.back().members;
        members.push_back({std::move(key), nullptr, key_start()});
        member_ = &members.back().value;
        return true;
    }

    // The members move into the object once, in document order, after the check for
    // duplicates: ordered_map would search for every key it is given, and its pairs of a
    // const key are copied, not moved, whenever its vector grows.
    bool end_object() {
        std::vector<member>& members = open_.back().members;
        reject_duplicate_keys(members);
        json::object_t& object = open_.back().value->get_ref<json::object_t&>();
        object.reserve(members.size());
        for (member& m : members) object.emplace_back(std::move(m.key), std::move(m.value));
        return close();
    }

    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 4: <what>",
    // and <what> quotes the token read so far ("; last read: '<token>'"), which can be a
    // whole unterminated string of raw bytes: the message keeps <what> without it.
    // `position` counts the bytes read, the offending one included.
    bool parse_error(std::size_t position, const std::string& token, const nlohmann::json::exception& e) {
        std::string what = e.what();
        what.erase(0, std::min(what.size(), what.find("] ") + 2));
        if (what.starts_with("parse error")) what.erase(0, std::min(what.size(), what.find(": ") + 2));
        const std::string quoted = "; last read: '" + token + "'";
        if (const std::size_t at = what.find(quoted); at != std::string::npos) what.erase(at, quoted.size());
        fail(position == 0 ? 0 : position - 1, what);
    }

private:
    struct member {
        std::string key;
        json value;
        std::size_t offset;  // of the key's opening quote
    };
    struct container {
        json* value;
        std::vector<member> members;  // of an object, until it ends
    };

    [[noreturn]] void fail(std::size_t offset, const std::string& what) const {
        throw format_error(std::string(source_) + ": invalid JSON at byte " + std::to_string(offset) + ": " + what);
    }

    // Where a value goes: the root, the end of the open array, or the member just keyed
    // (whose place stays put while the value's own members are read: a vector's elements
    // keep their address when the vector itself moves).
    template <class V>
    json* place(V&& value) {
        if (open_.empty()) {
            root_ = json(std::forward<V>(value));
            return &root_;
        }
        json& parent = *open_.back().value;
        if (parent.is_array()) {
            json::array_t& array = parent.get_ref<json::array_t&>();
            array.emplace_back(std::forward<V>(value));
            return &array.back();
        }
        *member_ = json(std::forward<V>(value));
        return member_;
    }

    template <class V>
    bool add(V&& value) {
        place(std::forward<V>(value));
        return true;
    }

    bool open(json empty) {
        if (open_.size() == json_max_depth)
            fail(read_ - 1, "nesting deeper than " + std::to_string(json_max_depth) + " levels");
        open_.push_back({place(std::move(empty)), {}});
        return true;
    }

    bool close() {
        open_.pop_back();
        return true;
    }

    // Sorting indices keeps this O(n log n) for headers with thousands of tensors.
    void reject_duplicate_keys(const std::vector<member>& members) const {
        std::vector<std::size_t> order(members.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return members[a].key < members[b].key; });
        for (std::size_t i = 1; i < order.size(); ++i) {
            const member& earlier = members[order[i - 1]];
            const member& later = members[order[i]];
            if (later.key == earlier.key)
                fail(later.offset,
                     "duplicate key \"" + later.key + "\" (first at byte " + std::to_string(earlier.offset) + ")");
        }
    }

    // The offset of the opening quote of the key the lexer has just read: back from its
    // closing quote to the first quote not escaped by an odd number of backslashes.
    std::size_t key_start() const {
        std::size_t at = read_ - 1;
        while (at > 0) {
            --at;
            if (text_[at] != '"') continue;
            std::size_t backslashes = 0;
            while (backslashes < at && text_[at - 1 - backslashes] == '\\') ++backslashes;
            if (backslashes % 2 == 0) break;
        }
        return at;
    }

    std::string_view text_;
    std::string_view source_;
    std::size_t read_ = 0;
    json root_;
    std::vector<container> open_;
    json* member_ = nullptr;
};

}  // namespace detail::json_text

// One JSON text; `source` (a file name, "architecture") prefixes every error message.
inline json parse_json(std::string_view text, std::string_view source) {
    return detail::json_text::strict_builder(text, source).parse();
}

// The compact text of `value` described above.
inline std::string dump_json(const json& value) {
    std::string out;
    detail::json_text::dump_to(out, value);
    return out;
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

    bool as_bool() const { return *checked(value_->get_ptr<const bool*>(), "a boolean"); }
    const std::string& as_string() const { return *checked(value_->get_ptr<const std::string*>(), "a string"); }

    std::int64_t as_int() const {
        if (const std::uint64_t* u = value_->get_ptr<const std::uint64_t*>()) {
            if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                fail("expected an integer of 64 signed bits, found " + std::to_string(*u));
            return static_cast<std::int64_t>(*u);
        }
        return *checked(value_->get_ptr<const std::int64_t*>(), "an integer");
    }

    // An integer no smaller than `min` (e.g. 0 for sizes, 1 for kernel sizes).
    std::int64_t as_int_at_least(std::int64_t min) const {
        const std::int64_t i = as_int();
        if (i < min) fail("expected an integer >= " + std::to_string(min) + ", found " + std::to_string(i));
        return i;
    }

    // Any number; integers are converted (exactly up to 2^53).
    double as_double() const {
        if (!value_->is_number()) fail("expected a number, found " + describe_json(*value_));
        return value_->get<double>();
    }

    // Array elements with their paths.
    std::vector<json_view> elements() const {
        const json::array_t& a = *checked(value_->get_ptr<const json::array_t*>(), "an array");
        std::vector<json_view> out;
        out.reserve(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) out.emplace_back(a[i], path_ + "[" + std::to_string(i) + "]");
        return out;
    }

    // Object members in document order: (key, view of the value).
    std::vector<std::pair<std::string_view, json_view>> members() const {
        const json::object_t& o = *checked(value_->get_ptr<const json::object_t*>(), "an object");
        std::vector<std::pair<std::string_view, json_view>> out;
        out.reserve(o.size());
        for (const auto& [key, value] : o) out.emplace_back(key, json_view(value, member_path(key)));
        return out;
    }

    // The member `key` of an object, or nothing; throws if this is not an object.
    std::optional<json_view> find(std::string_view key) const {
        const json::object_t& o = *checked(value_->get_ptr<const json::object_t*>(), "an object");
        for (const auto& [k, v] : o)
            if (k == key) return json_view(v, member_path(key));
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
        if (!p) fail(std::string("expected ") + expected + ", found " + describe_json(*value_));
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
