// idx: MNIST-style IDX files (LeCun's format), raw or gzip-compressed, and the MNIST
// directory loader built on them (Fashion-MNIST uses the same files and loader).
//
// Format: a big-endian int32 magic 0x000008DD (0x08: values are unsigned bytes, DD: the
// number of dimensions), DD big-endian int32 extents, then the values, row-major.
// - images: magic 0x00000803, extents [count, rows, cols] -> tensor [count, 1, rows, cols]
// - labels: magic 0x00000801, extent [count] -> count ints, each in [0, classes)
// A file starting with the gzip magic 1f 8b is decompressed first (zlib, link with -lz).
// Decompression stops one byte past the size the IDX header declares (and never goes
// beyond max_idx_bytes), so a gzip bomb cannot take more memory than a real file would.
//
// Errors: format_error for malformed content, io_error for files that cannot be read;
// each message names the file and the byte offset of the problem (for a .gz file,
// offsets count decompressed bytes unless they say "compressed").
// parse_idx_images / parse_idx_labels take bytes already in memory: they are what
// load_* call and what the fuzz target tests/fuzz/fuzz_idx.cpp exercises.
#pragma once

#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/error.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/data/dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

// The largest IDX payload accepted (2 GiB, far above any IDX dataset in use).
inline constexpr std::size_t max_idx_bytes = std::size_t{1} << 31;

namespace detail {

inline bool is_gzip(std::span<const unsigned char> bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// The first min(limit, total) decompressed bytes of gzip data made of one or more
// members (as `cat a.gz b.gz` makes). Stops as soon as `limit` bytes are out.
inline std::vector<unsigned char> gunzip(std::span<const unsigned char> bytes, std::string_view source,
                                         std::size_t limit) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) throw io_error(std::string(source) + ": cannot initialise zlib");
    struct end_on_exit {
        z_stream& z;
        ~end_on_exit() { inflateEnd(&z); }
    } cleanup{z};
    // zlib counts in 32-bit uInt: feed the input and take the output in slices.
    constexpr std::size_t input_slice = std::size_t{1} << 30, output_slice = std::size_t{1} << 20;
    // zlib's next_in is not const but inflate only reads through it.
    z.next_in = const_cast<Bytef*>(bytes.data());
    z.avail_in = static_cast<uInt>(std::min(bytes.size(), input_slice));
    std::size_t fed = z.avail_in;
    const auto where = [&] { return std::to_string(fed - z.avail_in); };
    std::vector<unsigned char> out;
    while (out.size() < limit) {
        if (z.avail_in == 0 && fed < bytes.size()) {
            z.avail_in = static_cast<uInt>(std::min(bytes.size() - fed, input_slice));
            fed += z.avail_in;
        }
        const std::size_t before = out.size(), room = std::min(output_slice, limit - before);
        out.resize(before + room);
        z.next_out = out.data() + before;
        z.avail_out = static_cast<uInt>(room);
        const int status = inflate(&z, Z_NO_FLUSH);
        out.resize(before + room - z.avail_out);
        if (status == Z_STREAM_END) {
            const std::size_t consumed = fed - z.avail_in;
            if (consumed == bytes.size()) break;
            if (!is_gzip(bytes.subspan(consumed)))
                throw format_error(std::string(source) +
                                   ": unexpected bytes after the end of the gzip stream, at compressed byte offset " +
                                   where());
            inflateReset(&z);
        } else if (status == Z_BUF_ERROR && z.avail_in == 0 && fed == bytes.size()) {
            throw format_error(std::string(source) + ": gzip stream is truncated: it ends at compressed byte offset " +
                               std::to_string(bytes.size()) + " before its end marker");
        } else if (status != Z_OK) {
            throw format_error(std::string(source) + ": corrupt gzip data near compressed byte offset " + where() +
                               " (zlib: " + (z.msg ? z.msg : "error " + std::to_string(status)) + ")");
        }
    }
    return out;
}

inline std::uint32_t read_be32(std::span<const unsigned char> bytes, std::size_t offset) {
    return std::uint32_t{bytes[offset]} << 24 | std::uint32_t{bytes[offset + 1]} << 16 |
           std::uint32_t{bytes[offset + 2]} << 8 | std::uint32_t{bytes[offset + 3]};
}

inline std::string hex32(std::uint32_t value) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08X", static_cast<unsigned>(value));
    return text;
}

// What the header of an unsigned-byte IDX file declares.
struct idx_header {
    std::vector<index_t> extents;
    std::size_t data_offset = 0;  // 4 + 4 * rank
    std::size_t data_bytes = 0;   // product of the extents
};

inline std::string idx_kind(std::uint32_t magic) {
    if (magic == 0x00000803) return "images";
    if (magic == 0x00000801) return "labels";
    return "";
}

// Reads and checks the header of an IDX file of unsigned bytes with `rank` dimensions.
// `head` may be just the start of the file: only the header has to be in it.
inline idx_header read_idx_header(std::span<const unsigned char> head, std::string_view source, int rank) {
    const std::string file(source);
    const std::uint32_t expected_magic = 0x00000800u | static_cast<std::uint32_t>(rank);
    const std::string expected = "IDX magic " + hex32(expected_magic) + " (" + idx_kind(expected_magic) + ")";
    if (head.size() < 4)
        throw format_error(file + ": file is " + std::to_string(head.size()) + " bytes long, too short for the " +
                           expected + " expected at byte offset 0");
    const std::uint32_t magic = read_be32(head, 0);
    if (magic != expected_magic) {
        const std::string kind = idx_kind(magic);
        throw format_error(file + ": expected " + expected + " at byte offset 0, found " + hex32(magic) +
                           (kind.empty() ? std::string() : " (an IDX " + kind + " file)"));
    }
    idx_header header;
    header.data_offset = 4 + 4 * static_cast<std::size_t>(rank);
    if (head.size() < header.data_offset)
        throw format_error(file + ": IDX header is truncated: it needs " + std::to_string(header.data_offset) +
                           " bytes but the file ends at byte offset " + std::to_string(head.size()));
    header.data_bytes = 1;
    for (int axis = 0; axis < rank; ++axis) {
        const std::size_t offset = 4 + 4 * static_cast<std::size_t>(axis);
        const std::uint32_t extent = read_be32(head, offset);
        if (extent > static_cast<std::uint32_t>(INT32_MAX))
            throw format_error(file + ": extent of dimension " + std::to_string(axis) + " at byte offset " +
                               std::to_string(offset) + " is negative (" +
                               std::to_string(static_cast<std::int64_t>(extent) - (std::int64_t{1} << 32)) + ")");
        if (extent != 0 && header.data_bytes > max_idx_bytes / extent)
            throw format_error(file + ": the extents from byte offset 4 declare more than " +
                               std::to_string(max_idx_bytes) + " bytes of data, the largest IDX file accepted");
        header.data_bytes *= extent;
        header.extents.push_back(static_cast<index_t>(extent));
    }
    return header;
}

inline std::string extents_text(const idx_header& header) {
    std::string text;
    for (index_t extent : header.extents) text += (text.empty() ? "" : " x ") + std::to_string(extent);
    return text;
}

// Throws unless the file holds exactly the data its header declares.
inline void check_idx_length(const idx_header& header, std::size_t file_bytes, std::string_view source,
                             bool compressed) {
    const std::size_t end = header.data_offset + header.data_bytes;
    const std::string declared = "the header declares " + extents_text(header) + " = " +
                                 std::to_string(header.data_bytes) + " data bytes from byte offset " +
                                 std::to_string(header.data_offset);
    const std::string note = compressed ? " (offsets in the decompressed data)" : "";
    if (file_bytes < end)
        throw format_error(std::string(source) + ": truncated: " + declared + ", but the file ends at byte offset " +
                           std::to_string(file_bytes) + note + ", " + std::to_string(end - file_bytes) +
                           " bytes short");
    if (file_bytes > end)
        throw format_error(std::string(source) + ": trailing garbage: " + declared +
                           ", so the file should end at byte offset " + std::to_string(end) + note +
                           ", but it goes on past it");
}

// Decodes an IDX file (raw or gzip) of `rank` dimensions and hands its extents and
// values to `consume`, whose result is returned. The values span lives only during the call.
template <class Consume>
auto with_idx_values(std::span<const unsigned char> bytes, std::string_view source, int rank, Consume consume) {
    if (!is_gzip(bytes)) {
        const idx_header header = read_idx_header(bytes, source, rank);
        check_idx_length(header, bytes.size(), source, false);
        return consume(header.extents, bytes.subspan(header.data_offset));
    }
    // The header is at most 4 + 4 * 255 bytes; read it, then inflate one byte more than
    // it declares, which is enough to tell a trailing-garbage file from a good one.
    const std::vector<unsigned char> head = gunzip(bytes, source, 4 + 4 * 255);
    const idx_header header = read_idx_header(head, source, rank);
    const std::vector<unsigned char> inflated = gunzip(bytes, source, header.data_offset + header.data_bytes + 1);
    check_idx_length(header, inflated.size(), source, true);
    return consume(header.extents, std::span<const unsigned char>(inflated).subspan(header.data_offset));
}

}  // namespace detail

// Images of an IDX file with magic 0x00000803, as [count, 1, rows, cols].
inline tensor<std::uint8_t> parse_idx_images(std::span<const unsigned char> bytes, std::string_view source) {
    return detail::with_idx_values(bytes, source, 3,
                                   [](const std::vector<index_t>& extents, std::span<const unsigned char> values) {
                                       tensor<std::uint8_t> images(shape{extents[0], 1, extents[1], extents[2]});
                                       std::ranges::copy(values, images.data());
                                       return images;
                                   });
}

// Labels of an IDX file with magic 0x00000801; each must be in [0, classes).
inline std::vector<int> parse_idx_labels(std::span<const unsigned char> bytes, std::string_view source,
                                         int classes = 10) {
    return detail::with_idx_values(
        bytes, source, 1, [&](const std::vector<index_t>&, std::span<const unsigned char> values) {
            std::vector<int> labels(values.begin(), values.end());
            for (std::size_t i = 0; i < labels.size(); ++i)
                if (labels[i] >= classes)
                    throw format_error(std::string(source) + ": label " + std::to_string(labels[i]) +
                                       " at byte offset " + std::to_string(8 + i) + " (item " + std::to_string(i) +
                                       ") is outside 0.." + std::to_string(classes - 1));
            return labels;
        });
}

inline tensor<std::uint8_t> load_idx_images(const std::filesystem::path& path) {
    return parse_idx_images(read_file(path), path.string());
}

inline std::vector<int> load_idx_labels(const std::filesystem::path& path, int classes = 10) {
    return parse_idx_labels(read_file(path), path.string(), classes);
}

namespace detail {

// The last component of a directory path, also when it is written with a trailing slash.
inline std::string directory_name(const std::filesystem::path& dir) {
    const std::filesystem::path normal = dir.lexically_normal();
    return normal.has_filename() ? normal.filename().string() : normal.parent_path().filename().string();
}

inline std::string mnist_fetch_hint(const std::filesystem::path& dir) {
    const bool fashion = dir.string().find("fashion") != std::string::npos;
    return "run datasets/fetch.sh " + std::string(fashion ? "fashion-mnist" : "mnist") + " to download it";
}

// dir/name, or dir/name.gz when only the compressed file is there.
inline std::filesystem::path find_idx_file(const std::filesystem::path& dir, const std::string& name) {
    for (const std::filesystem::path& candidate : {dir / name, dir / (name + ".gz")})
        if (std::filesystem::exists(candidate)) return candidate;  // read_file refuses what is no regular file
    throw io_error("'" + (dir / name).string() + "' not found (nor '" + name +
                   ".gz' next to it): " + mnist_fetch_hint(dir));
}

}  // namespace detail

// The MNIST training (60,000) or test (10,000) set from a directory holding
// {train,t10k}-{images-idx3,labels-idx1}-ubyte, each possibly with a .gz suffix.
// Also reads Fashion-MNIST, whose files have the same names and format.
inline dataset load_mnist(const std::filesystem::path& dir, bool train) {
    if (!std::filesystem::is_directory(dir))
        throw io_error("MNIST directory '" + dir.string() + "' does not exist: " + detail::mnist_fetch_hint(dir));
    const std::string prefix = train ? "train" : "t10k";
    const std::filesystem::path images_path = detail::find_idx_file(dir, prefix + "-images-idx3-ubyte");
    const std::filesystem::path labels_path = detail::find_idx_file(dir, prefix + "-labels-idx1-ubyte");
    dataset data{load_idx_images(images_path), load_idx_labels(labels_path), 10,
                 detail::directory_name(dir) + (train ? "-train" : "-test")};
    if (data.size() != data.images.batch())
        throw format_error(labels_path.string() + ": holds " + std::to_string(data.size()) +
                           " labels (count at byte offset 4) but '" + images_path.string() + "' holds " +
                           std::to_string(data.images.batch()) + " images (count at byte offset 4)");
    return data;
}

}  // namespace nnmark
