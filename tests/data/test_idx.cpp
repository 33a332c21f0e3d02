#include "nnmark/data/idx.hpp"

#include "../support/files.hpp"
#include "../support/skips.hpp"

#include <doctest/doctest.h>

#include <numeric>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// `count` images of rows x cols with value (i * 31 + k) mod 256 for pixel k of image i.
bytes pixel_values(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
    bytes values(count * rows * cols);
    for (std::size_t p = 0; p < values.size(); ++p) {
        const std::size_t item = p / (rows * cols), k = p % (rows * cols);
        values[p] = static_cast<unsigned char>((item * 31 + k) % 256);
    }
    return values;
}

bytes images_file(std::uint32_t count, std::uint32_t rows = 4, std::uint32_t cols = 3) {
    return idx_file({count, rows, cols}, pixel_values(count, rows, cols));
}

bytes labels_file(const bytes& labels) { return idx_file({static_cast<std::uint32_t>(labels.size())}, labels); }

// An MNIST-style directory with `count` images and labels 0, 1, 2, ... (mod 10).
void write_mnist(const temp_dir& dir, const std::string& prefix, std::uint32_t count, bool compressed) {
    bytes labels(count);
    for (std::uint32_t i = 0; i < count; ++i) labels[i] = static_cast<unsigned char>(i % 10);
    const std::string suffix = compressed ? ".gz" : "";
    write_bytes(dir / (prefix + "-images-idx3-ubyte" + suffix),
                compressed ? gzip(images_file(count, 28, 28)) : images_file(count, 28, 28));
    write_bytes(dir / (prefix + "-labels-idx1-ubyte" + suffix),
                compressed ? gzip(labels_file(labels)) : labels_file(labels));
}

void check_images(const tensor<std::uint8_t>& images, std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
    REQUIRE(images.shape() == shape{count, 1, rows, cols});
    const bytes expected = pixel_values(count, rows, cols);
    CHECK(std::equal(expected.begin(), expected.end(), images.data()));
}

}  // namespace

TEST_CASE("idx: raw images and labels parse to the declared shape and values") {
    check_images(parse_idx_images(images_file(5), "five.idx"), 5, 4, 3);
    const std::vector<int> labels = parse_idx_labels(labels_file({3, 0, 9, 9, 1}), "labels.idx");
    CHECK(labels == std::vector<int>{3, 0, 9, 9, 1});
    CHECK(parse_idx_images(images_file(0), "empty.idx").shape() == shape{0, 1, 4, 3});
}

TEST_CASE("idx: gzip files decode to the same content, also when made of several members") {
    check_images(parse_idx_images(gzip(images_file(7)), "seven.idx.gz"), 7, 4, 3);
    const bytes whole = images_file(7);
    const bytes first(whole.begin(), whole.begin() + 30), rest(whole.begin() + 30, whole.end());
    bytes members = gzip(first);
    const bytes second = gzip(rest);
    members.insert(members.end(), second.begin(), second.end());
    check_images(parse_idx_images(members, "members.idx.gz"), 7, 4, 3);
    CHECK(parse_idx_labels(gzip(labels_file({1, 2})), "l.gz") == std::vector<int>{1, 2});
}

TEST_CASE("idx: load_mnist reads raw and .gz directories and names the dataset after the directory") {
    temp_dir dir;
    write_mnist(dir, "train", 12, true);
    write_mnist(dir, "t10k", 5, false);
    const dataset train = load_mnist(dir.path, true);
    CHECK(train.size() == 12);
    CHECK(train.images.shape() == shape{12, 1, 28, 28});
    CHECK(train.labels[11] == 1);
    CHECK(train.images[28 * 28 + 2] == 33);  // image 1, pixel 2: 31 + 2
    CHECK(train.name == dir.path.filename().string() + "-train");
    const dataset test = load_mnist(dir.path.string() + "/", false);
    CHECK(test.size() == 5);
    CHECK(test.name == dir.path.filename().string() + "-test");
    CHECK(load_idx_labels(dir / "t10k-labels-idx1-ubyte") == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("idx: a truncated file names the file, the declared size and where it ends") {
    bytes file = images_file(5);
    file.pop_back();
    const std::string message = error_message([&] { parse_idx_images(file, "cut-images"); });
    INFO(message);
    CHECK(contains(message, "cut-images"));
    CHECK(contains(message, "truncated"));
    CHECK(contains(message, "5 x 4 x 3 = 60 data bytes from byte offset 16"));
    CHECK(contains(message, "ends at byte offset 75"));
    CHECK_THROWS_AS(parse_idx_images(file, "x"), format_error);

    const std::string header = error_message([&] { parse_idx_images(bytes(file.begin(), file.begin() + 10), "stub"); });
    INFO(header);
    CHECK(contains(header, "stub: IDX header is truncated"));
    CHECK(contains(header, "byte offset 10"));
    CHECK(contains(error_message([] { parse_idx_labels({}, "nothing"); }), "nothing: file is 0 bytes long"));
}

TEST_CASE("idx: trailing garbage names the offset where the data should end, raw and gzip") {
    bytes file = labels_file({1, 2, 3});
    file.push_back(7);
    for (const bytes& candidate : {file, gzip(file)}) {
        const std::string message = error_message([&] { parse_idx_labels(candidate, "long-labels"); });
        INFO(message);
        CHECK(contains(message, "long-labels: trailing garbage"));
        CHECK(contains(message, "should end at byte offset 11"));
    }
}

TEST_CASE("idx: a wrong magic number is reported with both values, and a swapped file is recognised") {
    const std::string swapped = error_message([] { parse_idx_images(labels_file({1}), "train-labels"); });
    INFO(swapped);
    CHECK(contains(swapped, "train-labels: expected IDX magic 0x00000803 (images) at byte offset 0"));
    CHECK(contains(swapped, "found 0x00000801 (an IDX labels file)"));
    bytes odd = images_file(1);
    odd[2] = 0x0D;  // float values: not supported
    const std::string message = error_message([&] { parse_idx_images(odd, "floats"); });
    INFO(message);
    CHECK(contains(message, "found 0x00000D03"));
}

TEST_CASE("idx: absurd extents are rejected before anything is allocated") {
    const std::string huge = error_message([] { parse_idx_images(idx_file({1u << 30, 1u << 30, 16}, {}), "huge"); });
    INFO(huge);
    CHECK(contains(huge, "huge: the extents from byte offset 4 declare more than"));
    const std::string negative = error_message([] { parse_idx_images(idx_file({2, 0xFFFFFFFEu, 3}, {}), "neg"); });
    INFO(negative);
    CHECK(contains(negative, "neg: extent of dimension 1 at byte offset 8 is negative (-2)"));
}

TEST_CASE("idx: corrupt or truncated gzip data is a format_error naming the file and the compressed offset") {
    const bytes garbage{0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x03, 0xff, 0xff, 0xff, 0x42, 0x42};
    const std::string corrupt = error_message([&] { parse_idx_images(garbage, "junk.gz"); });
    INFO(corrupt);
    CHECK(contains(corrupt, "junk.gz: corrupt gzip data near compressed byte offset"));
    CHECK_THROWS_AS(parse_idx_images(garbage, "junk.gz"), format_error);

    bytes cut = gzip(images_file(20));
    cut.resize(cut.size() - 12);
    const std::string truncated = error_message([&] { parse_idx_images(cut, "cut.gz"); });
    INFO(truncated);
    CHECK(contains(truncated, "cut.gz: gzip stream is truncated: it ends at compressed byte offset " +
                                  std::to_string(cut.size())));

    bytes padded = gzip(images_file(2));
    padded.push_back(0);
    const std::string after = error_message([&] { parse_idx_images(padded, "padded.gz"); });
    INFO(after);
    CHECK(contains(after, "padded.gz: unexpected bytes after the end of the gzip stream, at compressed byte offset " +
                              std::to_string(padded.size() - 1)));
}

TEST_CASE("idx: a gzip bomb stops one byte past the size its header declares") {
    // A header for 2 images of 4 x 4 followed by 16 MiB of zeros: decoding must stop early.
    bytes bomb = images_file(2, 4, 4);
    bomb.resize(bomb.size() + (std::size_t{16} << 20), 0);
    const bytes compressed = gzip(bomb, Z_BEST_SPEED);
    CHECK(compressed.size() < 100'000);
    const std::string message = error_message([&] { parse_idx_images(compressed, "bomb.gz"); });
    INFO(message);
    CHECK(contains(message, "bomb.gz: trailing garbage"));
    CHECK(contains(message, "should end at byte offset 48 (offsets in the decompressed data)"));
}

TEST_CASE("idx: labels outside 0..classes-1 name the file, the offset and the item") {
    const std::string message = error_message([] { parse_idx_labels(labels_file({0, 9, 11}), "bad-labels"); });
    INFO(message);
    CHECK(contains(message, "bad-labels: label 11 at byte offset 10 (item 2) is outside 0..9"));
    CHECK(parse_idx_labels(labels_file({0, 9, 11}), "wide", 12) == std::vector<int>{0, 9, 11});
}

TEST_CASE("idx: load_mnist reports a count mismatch with both files") {
    temp_dir dir;
    write_mnist(dir, "train", 6, false);
    write_bytes(dir / "train-labels-idx1-ubyte", labels_file({1, 2, 3, 4, 5}));
    const std::string message = error_message([&] { load_mnist(dir.path, true); });
    INFO(message);
    CHECK(contains(message, (dir / "train-labels-idx1-ubyte").string() + ": holds 5 labels (count at byte offset 4)"));
    CHECK(contains(message, "'" + (dir / "train-images-idx3-ubyte").string() + "' holds 6 images"));
}

TEST_CASE("idx: missing directories and files say what is missing and how to get it") {
    temp_dir dir;
    const std::string no_dir = error_message([&] { load_mnist(dir / "fashion-mnist", true); });
    INFO(no_dir);
    CHECK(contains(no_dir, "MNIST directory '" + (dir / "fashion-mnist").string() + "' does not exist"));
    CHECK(contains(no_dir, "datasets/fetch.sh fashion-mnist"));
    CHECK_THROWS_AS(load_mnist(dir / "nowhere", true), io_error);

    write_bytes(dir / "t10k-images-idx3-ubyte", images_file(1, 28, 28));
    const std::string no_file = error_message([&] { load_mnist(dir.path, false); });
    INFO(no_file);
    CHECK(contains(no_file, "'" + (dir / "t10k-labels-idx1-ubyte").string() + "' not found"));
    CHECK(contains(no_file, "datasets/fetch.sh mnist"));
    CHECK(contains(error_message([&] { load_idx_images(dir / "absent"); }), (dir / "absent").string()));
}

// The training images (47 MB) are left out to keep the test fast; fetch.sh checks their SHA-256.
TEST_CASE("idx: the real MNIST has the published label counts" * NNMARK_EXTERNAL_TEST) {
    const std::filesystem::path mnist = source_dir() / "datasets" / "mnist";
    if (!std::filesystem::exists(mnist / "t10k-labels-idx1-ubyte"))
        return skip_test(mnist.string() + " not present (run datasets/fetch.sh mnist)");
    const dataset test = load_mnist(mnist, false);
    CHECK(test.images.shape() == shape{10000, 1, 28, 28});
    CHECK(test.label_counts() == std::vector<index_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
    dataset train;
    train.labels = load_idx_labels(mnist / "train-labels-idx1-ubyte");
    CHECK(train.label_counts() == std::vector<index_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
}

TEST_CASE("idx: the real Fashion-MNIST has the published label counts" * NNMARK_EXTERNAL_TEST) {
    const std::filesystem::path fashion = source_dir() / "datasets" / "fashion-mnist";
    if (!std::filesystem::exists(fashion / "t10k-labels-idx1-ubyte"))
        return skip_test(fashion.string() + " not present (run datasets/fetch.sh fashion-mnist)");
    const dataset test = load_mnist(fashion, false);
    CHECK(test.label_counts() == std::vector<index_t>(10, 1000));
    dataset train;
    train.labels = load_idx_labels(fashion / "train-labels-idx1-ubyte");
    CHECK(train.label_counts() == std::vector<index_t>(10, 6000));
}
