// safetensors: read and write the file format of Hugging Face's safetensors library,
// which nnmark uses for models and watermark keys (and which PyTorch users can read).
//
// Layout of a file:
//   bytes [0, 8)       N, the header length, a little-endian unsigned 64-bit integer
//   bytes [8, 8 + N)   a JSON object, UTF-8, possibly padded with trailing spaces:
//                        {"__metadata__": {"key": "value", ...},            (optional)
//                         "<tensor name>": {"dtype": "F32", "shape": [32, 1, 3, 3],
//                                           "data_offsets": [begin, end]}, ...}
//   bytes [8 + N, end) the data buffer; each tensor's elements are row-major, little
//                      endian, at [begin, end) relative to the start of the buffer.
//
// Reader contract (safetensors_file::parse): every tensor's byte range holds exactly
// product(shape) * dtype size bytes, and the ranges tile the data buffer without
// overlaps, gaps or unused trailing bytes (the format requires it). Anything else is
// a format_error naming the file and the place: the header path of a bad value
// ("x.safetensors: header.'0.weight'.shape[1]: ..."), the byte offset of bad JSON, or
// the tensors whose ranges overlap. Tensor views point into the file's own buffer.
//
// Writer contract (safetensors_writer), as the reference implementation writes:
// tensors are sorted by name and packed in that order, the header is padded with
// spaces to a multiple of 8 bytes (so data starts 8-aligned), and write() replaces
// the file atomically (core/atomic_file.hpp).
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/half_float.hpp"
#include "nnmark/core/json.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace nnmark {

// Tensor data is copied to and from memory as raw bytes, which is the file's byte
// order only on little-endian hosts (x86-64, AArch64 as used).
static_assert(std::endian::native == std::endian::little,
              "nnmark/model/safetensors.hpp: tensor bytes are copied raw; add byte swapping for big-endian hosts");

// Every dtype of the safetensors specification with its element size in bytes.
struct safetensors_dtype {
    std::string_view name;
    std::size_t size;
};

inline constexpr safetensors_dtype safetensors_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
    {"BF16", 2}, {"I32", 4}, {"U32", 4},  {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8},
};

// Element size of `dtype`, or nothing when the specification has no such dtype.
inline std::optional<std::size_t> safetensors_dtype_size(std::string_view dtype) {
    for (const auto& d : safetensors_dtypes)
        if (d.name == dtype) return d.size;
    return std::nullopt;
}

// The dtype that stores a C++ element type bit for bit.
template <class T>
inline constexpr std::string_view safetensors_dtype_of = []() -> std::string_view {
    static_assert(std::is_arithmetic_v<T>, "safetensors_dtype_of: not an arithmetic type");
    if constexpr (std::is_same_v<T, bool>) return "BOOL";
    else if constexpr (std::is_same_v<T, float>) return "F32";
    else if constexpr (std::is_same_v<T, double>) return "F64";
    else if constexpr (std::is_integral_v<T>) {
        constexpr std::string_view signed_names[] = {"I8", "I16", "", "I32", "", "", "", "I64"};
        constexpr std::string_view unsigned_names[] = {"U8", "U16", "", "U32", "", "", "", "U64"};
        return std::is_signed_v<T> ? signed_names[sizeof(T) - 1] : unsigned_names[sizeof(T) - 1];
    } else {
        return "";  // long double: no dtype; rejected where used
    }
}();

// "[32, 1, 3, 3]": dims written as shape::str() writes shapes.
inline std::string dims_str(std::span<const std::int64_t> dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

inline std::vector<std::int64_t> dims_of(const shape& s) {
    std::vector<std::int64_t> dims;
    for (int a = 0; a < s.rank(); ++a) dims.push_back(static_cast<std::int64_t>(s[a]));
    return dims;
}

// One tensor of a file. Rank is not limited to 4 here (foreign files may hold anything).
struct safetensors_entry {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> dims;
    std::span<const unsigned char> bytes;  // into the owning safetensors_file

    // Product of the dims (validated by the reader not to overflow).
    std::int64_t count() const {
        std::int64_t n = 1;
        for (std::int64_t d : dims) n *= d;
        return n;
    }

    // The dims as an nnmark::shape; shape_error if the rank exceeds 4.
    nnmark::shape to_shape() const {
        if (dims.size() > static_cast<std::size_t>(nnmark::shape::max_rank))
            throw shape_error("tensor '" + name + "' has rank " + std::to_string(dims.size()) + " (shape " +
                              dims_str(dims) + "); nnmark supports at most 4 dimensions");
        nnmark::shape s;
        for (std::int64_t d : dims) s.push_back(static_cast<index_t>(d));
        return s;
    }

    // The elements as T into `out` (count() elements). Same dtype: copied bit for bit;
    // a floating-point T also takes F32, F64, F16 and BF16 (widened exactly, or F64
    // rounded to float: core/half_float.hpp); anything else is a format_error.
    template <class T>
    void copy_to(std::span<T> out) const {
        if (out.size() != static_cast<std::size_t>(count()))
            throw argument_error("tensor '" + name + "': cannot copy " + std::to_string(count()) +
                                 " elements into a buffer of " + std::to_string(out.size()));
        if (dtype == safetensors_dtype_of<T>) {
            if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
        } else if (std::is_floating_point_v<T> && dtype == "F32") {
            convert_into<float>(out);
        } else if (std::is_floating_point_v<T> && dtype == "F64") {
            convert_into<double>(out);
        } else if (std::is_floating_point_v<T> && dtype == "F16") {
            convert_into<std::uint16_t>(out, float_from_f16);
        } else if (std::is_floating_point_v<T> && dtype == "BF16") {
            convert_into<std::uint16_t>(out, float_from_bf16);
        } else {
            throw format_error("tensor '" + name + "' has dtype " + dtype + ", expected " +
                               std::string(safetensors_dtype_of<T>));
        }
    }

    template <class T>
    std::vector<T> values() const {
        std::vector<T> out(static_cast<std::size_t>(count()));
        copy_to(std::span<T>(out));
        return out;
    }

private:
    // memcpy per element: the bytes need not be aligned for From. `decode` turns a
    // stored element into a number (the bit patterns of F16 and BF16 into floats).
    template <class From, class T, class Decode = From (*)(From)>
    void convert_into(std::span<T> out, Decode decode = [](From v) { return v; }) const {
        for (std::size_t i = 0; i < out.size(); ++i) {
            From v;
            std::memcpy(&v, bytes.data() + i * sizeof(From), sizeof(From));
            out[i] = static_cast<T>(decode(v));
        }
    }
};

// A parsed safetensors file: owns its bytes; entries view into them. Movable, not
// copyable (a copy's entries would point into the original's buffer).
class safetensors_file {
public:
    // Larger headers are refused before parsing: the reference implementation uses
    // the same limit against files that announce absurd header lengths.
    static constexpr std::uint64_t max_header_bytes = 100'000'000;

    // Validate `bytes` as a safetensors file; `source` names it in error messages.
    static safetensors_file parse(std::vector<unsigned char> bytes, std::string source) {
        safetensors_file f;
        f.bytes_ = std::move(bytes);
        f.source_ = std::move(source);
        f.read_header();
        return f;
    }

    static safetensors_file load(const std::filesystem::path& path) { return parse(read_file(path), path.string()); }

    safetensors_file(safetensors_file&&) = default;
    safetensors_file& operator=(safetensors_file&&) = default;
    safetensors_file(const safetensors_file&) = delete;
    safetensors_file& operator=(const safetensors_file&) = delete;

    const std::string& source() const { return source_; }

    // "__metadata__" entries in header order.
    const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
    const std::string* find_metadata(std::string_view key) const {
        for (const auto& [k, v] : metadata_)
            if (k == key) return &v;
        return nullptr;
    }

    // All tensors, sorted by name.
    const std::vector<safetensors_entry>& entries() const { return entries_; }

    // The tensor called `name`, or nullptr.
    const safetensors_entry* find(std::string_view name) const {
        const auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                                         [](const safetensors_entry& e, std::string_view n) { return e.name < n; });
        return it != entries_.end() && it->name == name ? &*it : nullptr;
    }

private:
    safetensors_file() = default;

    [[noreturn]] void fail(const std::string& what) const { throw format_error(source_ + ": " + what); }

    void read_header() {
        if (bytes_.size() < 8)
            fail("file is " + std::to_string(bytes_.size()) +
                 " bytes long, too short for the 8-byte header length of a safetensors file");
        std::uint64_t header_bytes = 0;
        for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | bytes_[static_cast<std::size_t>(i)];
        if (header_bytes > max_header_bytes)
            fail("header length " + std::to_string(header_bytes) + " exceeds the limit of " +
                 std::to_string(max_header_bytes) + " bytes");
        if (header_bytes > bytes_.size() - 8)
            fail("header length " + std::to_string(header_bytes) + " exceeds the " + std::to_string(bytes_.size() - 8) +
                 " bytes that follow the length field");
        const std::size_t header_end = 8 + static_cast<std::size_t>(header_bytes);
        const std::string_view text(reinterpret_cast<const char*>(bytes_.data()) + 8, header_end - 8);
        const json header = parse_json(text, source_ + ": header");
        const std::span<const unsigned char> data(bytes_.data() + header_end, bytes_.size() - header_end);
        for (const auto& [name, value] : json_view(header, source_ + ": header").members()) {
            if (name == "__metadata__") read_metadata(value);
            else entries_.push_back(read_entry(std::string(name), value, data));
        }
        check_coverage(data);
        std::sort(entries_.begin(), entries_.end(),
                  [](const safetensors_entry& a, const safetensors_entry& b) { return a.name < b.name; });
    }

    void read_metadata(const json_view& value) {
        for (const auto& [key, text] : value.members()) metadata_.emplace_back(key, text.as_string());
    }

    // One tensor's header entry; its data range is checked against `data`.
    static safetensors_entry read_entry(std::string name, const json_view& info, std::span<const unsigned char> data) {
        info.expect_only_keys({"dtype", "shape", "data_offsets"});
        const std::string& dtype = info["dtype"].as_string();
        const auto element_size = safetensors_dtype_size(dtype);
        if (!element_size) {
            std::string known;
            for (const auto& d : safetensors_dtypes) known += (known.empty() ? "" : ", ") + std::string(d.name);
            info["dtype"].fail("unknown dtype \"" + dtype + "\" (known: " + known + ")");
        }
        std::vector<std::int64_t> dims;
        std::uint64_t byte_count = *element_size;
        for (const json_view& d : info["shape"].elements()) {
            dims.push_back(d.as_int_at_least(0));
            if (__builtin_mul_overflow(byte_count, static_cast<std::uint64_t>(dims.back()), &byte_count))
                info["shape"].fail("a tensor of this shape would exceed 2^64 bytes");
        }
        const json_view offsets = info["data_offsets"];
        const std::vector<json_view> range = offsets.elements();
        if (range.size() != 2)
            offsets.fail("expected [begin, end], found " + std::to_string(range.size()) + " elements");
        const auto begin = static_cast<std::uint64_t>(range[0].as_int_at_least(0));
        const auto end = static_cast<std::uint64_t>(range[1].as_int_at_least(0));
        const std::string range_text = "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
        if (end < begin) offsets.fail(range_text + " ends before it begins");
        if (end > data.size())
            offsets.fail(range_text + " reaches beyond the data buffer of " + std::to_string(data.size()) + " bytes");
        if (end - begin != byte_count)
            offsets.fail(range_text + " holds " + std::to_string(end - begin) + " bytes, but shape " + dims_str(dims) +
                         " of " + dtype + " needs " + std::to_string(byte_count));
        return {std::move(name), dtype, std::move(dims),
                data.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin))};
    }

    // The byte ranges, in order, must tile the data buffer exactly.
    void check_coverage(std::span<const unsigned char> data) const {
        const auto begin_of = [&](const safetensors_entry& e) { return static_cast<std::size_t>(e.bytes.data() - data.data()); };
        const auto range_of = [&](const safetensors_entry& e) {
            return "[" + std::to_string(begin_of(e)) + ", " + std::to_string(begin_of(e) + e.bytes.size()) + "]";
        };
        std::vector<const safetensors_entry*> by_offset;
        for (const auto& e : entries_) by_offset.push_back(&e);
        std::sort(by_offset.begin(), by_offset.end(), [&](const safetensors_entry* a, const safetensors_entry* b) {
            return std::tuple(begin_of(*a), a->bytes.size(), a->name) < std::tuple(begin_of(*b), b->bytes.size(), b->name);
        });
        std::size_t covered = 0;
        const safetensors_entry* previous = nullptr;
        for (const safetensors_entry* e : by_offset) {
            const std::size_t begin = begin_of(*e);
            if (begin < covered)
                fail("tensors '" + previous->name + "' (data_offsets " + range_of(*previous) + ") and '" + e->name +
                     "' (data_offsets " + range_of(*e) + ") overlap");
            if (begin > covered)
                fail("data bytes [" + std::to_string(covered) + ", " + std::to_string(begin) +
                     ") belong to no tensor (a gap before '" + e->name + "'); the format requires the data to be packed");
            covered = begin + e->bytes.size();
            previous = e;
        }
        if (covered != data.size())
            fail("the last " + std::to_string(data.size() - covered) + " bytes of the data buffer (from offset " +
                 std::to_string(covered) + ") belong to no tensor");
    }

    std::vector<unsigned char> bytes_;
    std::string source_;
    std::vector<std::pair<std::string, std::string>> metadata_;
    std::vector<safetensors_entry> entries_;
};

// Collects tensors and metadata, then writes one safetensors file.
class safetensors_writer {
public:
    // Set (or replace) a "__metadata__" entry.
    void set_metadata(std::string key, std::string value) {
        for (auto& [k, v] : metadata_)
            if (k == key) {
                v = std::move(value);
                return;
            }
        metadata_.emplace_back(std::move(key), std::move(value));
    }

    // Add a tensor from its raw little-endian bytes (copied). argument_error for a
    // duplicate or reserved name, an unknown dtype, or bytes that do not fit the shape.
    void add_tensor(std::string name, std::string dtype, std::vector<std::int64_t> dims,
                    std::span<const unsigned char> bytes) {
        const auto element_size = safetensors_dtype_size(dtype);
        if (!element_size) throw argument_error("safetensors_writer: tensor '" + name + "': unknown dtype \"" + dtype + "\"");
        if (name == "__metadata__") throw argument_error("safetensors_writer: \"__metadata__\" is reserved for metadata");
        std::uint64_t expected = *element_size;
        for (std::int64_t d : dims)
            if (d < 0 || __builtin_mul_overflow(expected, static_cast<std::uint64_t>(d), &expected))
                throw argument_error("safetensors_writer: tensor '" + name + "': invalid shape " + dims_str(dims));
        if (bytes.size() != expected)
            throw argument_error("safetensors_writer: tensor '" + name + "': shape " + dims_str(dims) + " of " + dtype +
                                 " needs " + std::to_string(expected) + " bytes, got " + std::to_string(bytes.size()));
        const auto at = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                         [](const pending& t, const std::string& n) { return t.name < n; });
        if (at != tensors_.end() && at->name == name)
            throw argument_error("safetensors_writer: tensor '" + name + "' added twice");
        tensors_.insert(at, pending{std::move(name), std::move(dtype), std::move(dims),
                                    std::vector<unsigned char>(bytes.begin(), bytes.end())});
    }

    // Add a tensor of C++ elements, stored as the matching dtype (float -> F32, ...).
    template <class T>
    void add_tensor(std::string name, std::vector<std::int64_t> dims, std::span<const T> values) {
        const std::span<const unsigned char> bytes(reinterpret_cast<const unsigned char*>(values.data()), values.size_bytes());
        add_tensor(std::move(name), std::string(safetensors_dtype_of<T>), std::move(dims), bytes);
    }

    // The complete file.
    std::vector<unsigned char> to_bytes() const {
        const std::vector<unsigned char> head = header();
        std::vector<unsigned char> out;
        for (std::span<const unsigned char> chunk : chunks(head)) out.insert(out.end(), chunk.begin(), chunk.end());
        return out;
    }

    // Replace `path` atomically with the file.
    void write(const std::filesystem::path& path) const {
        const std::vector<unsigned char> head = header();
        write_file_atomically(path, chunks(head));
    }

private:
    struct pending {
        std::string name;
        std::string dtype;
        std::vector<std::int64_t> dims;
        std::vector<unsigned char> bytes;
    };

    // Length field plus the JSON header, padded with spaces to a multiple of 8 bytes.
    std::vector<unsigned char> header() const {
        json doc = json::object();
        if (!metadata_.empty()) {
            json meta = json::object();
            for (const auto& [k, v] : metadata_) meta[k] = v;
            doc["__metadata__"] = std::move(meta);
        }
        std::uint64_t offset = 0;
        for (const pending& t : tensors_) {
            json info = json::object();
            info["dtype"] = t.dtype;
            json dims = json::array();
            for (std::int64_t d : t.dims) dims.push_back(d);
            info["shape"] = std::move(dims);
            json range = json::array();
            range.push_back(offset);
            range.push_back(offset + t.bytes.size());
            info["data_offsets"] = std::move(range);
            doc[t.name] = std::move(info);
            offset += t.bytes.size();
        }
        std::string text = dump_json(doc);
        text.append((8 - text.size() % 8) % 8, ' ');
        if (text.size() > safetensors_file::max_header_bytes)
            throw argument_error("safetensors_writer: header of " + std::to_string(text.size()) +
                                 " bytes exceeds the limit of " + std::to_string(safetensors_file::max_header_bytes));
        // One allocation, filled in place (vector::insert here trips GCC 12's -Warray-bounds).
        std::vector<unsigned char> out(8 + text.size());
        for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(text.size() >> (8 * i));
        std::memcpy(out.data() + 8, text.data(), text.size());
        return out;
    }

    std::vector<std::span<const unsigned char>> chunks(const std::vector<unsigned char>& head) const {
        std::vector<std::span<const unsigned char>> out{std::span<const unsigned char>(head)};
        for (const pending& t : tensors_) out.emplace_back(t.bytes);
        return out;
    }

    std::vector<std::pair<std::string, std::string>> metadata_;
    std::vector<pending> tensors_;  // sorted by name: the order of the header and the data
};

}  // namespace nnmark
