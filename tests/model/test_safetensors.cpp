#include "nnmark/model/safetensors.hpp"

#include "../support/files.hpp"
#include "../support/safetensors_bytes.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

using namespace nnmark;
using testing::raw_bytes;
using testing::safetensors_bytes;
using testing::temp_dir;

namespace {

using bytes_t = testing::bytes;

// The format_error message of parsing `bytes` as "f.safetensors" ("" if it parses).
std::string parse_error(const bytes_t& bytes) {
    return testing::thrown_message<format_error>([&] { safetensors_file::parse(bytes, "f.safetensors"); });
}

}  // namespace

TEST_CASE("safetensors: float and double round trip bit for bit, NaN payloads, denormals and -0 included") {
    std::vector<float> f = {0.f, -0.f, 1.5f, std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::max()};
    std::uint32_t payload_nan = 0x7FC01234u, signaling_nan = 0xFF800001u;
    f.push_back(std::bit_cast<float>(payload_nan));
    f.push_back(std::bit_cast<float>(signaling_nan));
    std::vector<double> d = {-0.0, std::numeric_limits<double>::denorm_min(), 1e-310, std::bit_cast<double>(0x7FF0000000000ABCull),
                             3.141592653589793};
    const std::vector<std::uint8_t> u = {0, 1, 255};
    const std::vector<std::int64_t> i = {std::numeric_limits<std::int64_t>::min(), -1, 9007199254740993LL};

    safetensors_writer w;
    w.add_tensor<float>("w.float", {2, 4}, f);
    w.add_tensor<double>("a.double", {5}, d);
    w.add_tensor<std::uint8_t>("m.mask", {3, 1}, u);
    w.add_tensor<std::int64_t>("num_batches_tracked", {3}, i);
    w.add_tensor<float>("empty", {0, 3}, std::span<const float>());
    w.set_metadata("format", "pt");
    w.set_metadata("note", "\"quoted\"\n\xC3\xA9");

    temp_dir dir;
    const auto path = dir.path / "round.safetensors";
    w.write(path);
    CHECK(read_file(path) == w.to_bytes());
    const safetensors_file file = safetensors_file::load(path);
    CHECK(file.source() == path.string());

    REQUIRE(file.entries().size() == 5);
    CHECK(file.entries()[0].name == "a.double");  // sorted by name
    CHECK(file.entries()[1].name == "empty");
    const safetensors_entry* wf = file.find("w.float");
    REQUIRE(wf != nullptr);
    CHECK(wf->dtype == "F32");
    CHECK(wf->dims == std::vector<std::int64_t>{2, 4});
    CHECK(wf->to_shape() == shape{2, 4});
    CHECK(wf->bytes.size() == f.size() * 4);
    CHECK(std::memcmp(wf->bytes.data(), f.data(), wf->bytes.size()) == 0);
    const std::vector<float> f_back = wf->values<float>();
    CHECK(std::memcmp(f_back.data(), f.data(), f.size() * 4) == 0);
    const std::vector<double> d_back = file.find("a.double")->values<double>();
    CHECK(std::memcmp(d_back.data(), d.data(), d.size() * 8) == 0);
    CHECK(file.find("m.mask")->dtype == "U8");
    CHECK(file.find("m.mask")->values<std::uint8_t>() == u);
    CHECK(file.find("num_batches_tracked")->dtype == "I64");
    CHECK(file.find("num_batches_tracked")->values<std::int64_t>() == i);
    CHECK(file.find("empty")->count() == 0);
    CHECK(file.find("absent") == nullptr);
    CHECK(*file.find_metadata("note") == "\"quoted\"\n\xC3\xA9");
    CHECK(file.metadata().size() == 2);
    CHECK(file.find_metadata("absent") == nullptr);
}

TEST_CASE("safetensors: F32 and F64 convert into each other, other dtypes must match") {
    safetensors_writer w;
    const std::vector<double> d = {0.1, -2.5, 1e300};
    w.add_tensor<double>("d", {3}, d);
    w.add_tensor<std::uint8_t>("u", {1}, std::vector<std::uint8_t>{7});
    const safetensors_file file = safetensors_file::parse(w.to_bytes(), "mem");
    const std::vector<float> as_float = file.find("d")->values<float>();
    CHECK(as_float[0] == 0.1f);
    CHECK(as_float[1] == -2.5f);
    CHECK(std::isinf(as_float[2]));
    CHECK(file.find("u")->values<std::uint8_t>()[0] == 7);
    CHECK_THROWS_WITH_AS(file.find("u")->values<float>(), "tensor 'u' has dtype U8, expected F32", format_error);
    std::vector<float> small(2);
    CHECK_THROWS_AS(file.find("d")->copy_to(std::span<float>(small)), argument_error);
}

TEST_CASE("safetensors: writer layout: sorted, packed, header padded to 8 bytes with spaces") {
    safetensors_writer w;
    w.add_tensor<float>("b", {1}, std::vector<float>{2.f});
    w.add_tensor<float>("a", {2}, std::vector<float>{0.f, 1.f});
    w.set_metadata("format", "pt");
    const bytes_t bytes = w.to_bytes();
    const std::string json_text = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    const std::string padded = json_text + std::string((8 - json_text.size() % 8) % 8, ' ');
    REQUIRE(padded.size() % 8 == 0);
    REQUIRE(padded.size() > json_text.size());  // this example does need padding
    CHECK(bytes == safetensors_bytes(padded, raw_bytes(std::vector<float>{0.f, 1.f, 2.f})));
}

TEST_CASE("safetensors: writer rejects what the format cannot hold") {
    safetensors_writer w;
    const bytes_t four(4);
    w.add_tensor("x", "F32", {1}, four);
    CHECK_THROWS_WITH_AS(w.add_tensor("x", "F32", {1}, four), "safetensors_writer: tensor 'x' added twice", argument_error);
    CHECK_THROWS_WITH_AS(w.add_tensor("y", "F31", {1}, four), "safetensors_writer: tensor 'y': unknown dtype \"F31\"",
                         argument_error);
    CHECK_THROWS_WITH_AS(w.add_tensor("y", "F32", {2}, four),
                         "safetensors_writer: tensor 'y': shape [2] of F32 needs 8 bytes, got 4", argument_error);
    CHECK_THROWS_AS(w.add_tensor("y", "F32", {-1}, four), argument_error);
    CHECK_THROWS_AS(w.add_tensor("__metadata__", "F32", {1}, four), argument_error);
}

TEST_CASE("safetensors: a file written as PyTorch's safetensors writes it loads") {
    // What safetensors.torch.save_file writes for a BatchNorm1d(2) state_dict: tensors
    // sorted by dtype (I64 before F32), then by name; serde_json's compact header;
    // padded with spaces.
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
        R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
        R"("running_mean":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},)"
        R"("running_var":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},)"
        R"("weight":{"dtype":"F32","shape":[2],"data_offsets":[32,40]}}  )";
    REQUIRE(header.size() % 8 == 0);
    bytes_t data = raw_bytes(std::vector<std::int64_t>{3});
    for (const auto& v : {std::vector<float>{0.f, 0.5f}, std::vector<float>{0.1f, -0.1f}, std::vector<float>{1.f, 2.f},
                          std::vector<float>{1.f, 1.f}})
        testing::append_raw_bytes(data, v);
    const safetensors_file file = safetensors_file::parse(safetensors_bytes(header, data), "bn.safetensors");
    REQUIRE(file.entries().size() == 5);
    CHECK(file.find("num_batches_tracked")->dims.empty());
    CHECK(file.find("num_batches_tracked")->to_shape() == shape{});
    CHECK(file.find("num_batches_tracked")->values<std::int64_t>() == std::vector<std::int64_t>{3});
    CHECK(file.find("running_var")->values<float>() == std::vector<float>{1.f, 2.f});
    CHECK(file.find("bias")->values<float>() == std::vector<float>{0.f, 0.5f});
    CHECK(*file.find_metadata("format") == "pt");
}

TEST_CASE("safetensors: empty and zero-sized tensors are valid") {
    CHECK(parse_error(safetensors_bytes("{}", {})).empty());
    CHECK(parse_error(safetensors_bytes("  {}  ", {})).empty());
    CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                        R"("b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                        R"("c":{"dtype":"F64","shape":[2,0],"data_offsets":[1,1]}})",
                                        {9}))
              .empty());
}

TEST_CASE("safetensors: a rank-5 tensor is read, but is not an nnmark::shape") {
    const safetensors_file file = safetensors_file::parse(
        safetensors_bytes(R"({"t":{"dtype":"U8","shape":[1,1,1,1,2],"data_offsets":[0,2]}})", {1, 2}), "r5");
    CHECK(file.find("t")->dims.size() == 5);
    CHECK_THROWS_WITH_AS(file.find("t")->to_shape(),
                         "tensor 't' has rank 5 (shape [1, 1, 1, 1, 2]); nnmark supports at most 4 dimensions",
                         shape_error);
}

TEST_CASE("safetensors: damaged files are rejected with a message saying what and where") {
    const std::string one = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const bytes_t eight(8, 0);
    REQUIRE(parse_error(safetensors_bytes(one, eight)).empty());

    SUBCASE("truncated") {
        CHECK(parse_error(bytes_t{}) ==
              "f.safetensors: file is 0 bytes long, too short for the 8-byte header length of a safetensors file");
        CHECK(parse_error(bytes_t(5, 0)) ==
              "f.safetensors: file is 5 bytes long, too short for the 8-byte header length of a safetensors file");
        bytes_t cut = safetensors_bytes(one, eight);
        cut.resize(cut.size() - 3);
        CHECK(parse_error(cut) ==
              "f.safetensors: header.x.data_offsets: [0, 8] reaches beyond the data buffer of 5 bytes");
        cut.resize(8 + 20);
        CHECK(parse_error(cut) == "f.safetensors: header length 54 exceeds the 20 bytes that follow the length field");
    }
    SUBCASE("oversized header length") {
        CHECK(parse_error(safetensors_bytes(one, eight, 100'000'001)) ==
              "f.safetensors: header length 100000001 exceeds the limit of 100000000 bytes");
        CHECK(parse_error(safetensors_bytes(one, eight, std::numeric_limits<std::uint64_t>::max())) ==
              "f.safetensors: header length 18446744073709551615 exceeds the limit of 100000000 bytes");
    }
    SUBCASE("header is not JSON, or not an object") {
        CHECK(parse_error(safetensors_bytes("{\"x\":", {})) ==
              "f.safetensors: header: invalid JSON at byte 5: syntax error while parsing value - unexpected end of input; "
              "expected '[', '{', or a literal");
        CHECK(parse_error(safetensors_bytes(std::string("{}\0\0\0\0\0\0", 8), {})) ==
              "f.safetensors: header: invalid JSON at byte 2: unexpected byte 0x00 after the end of the value");
        CHECK(parse_error(safetensors_bytes("[1,2]", {})) ==
              "f.safetensors: header: expected an object, found an array");
        CHECK(parse_error(safetensors_bytes(R"({"x":[1]})", {})) ==
              "f.safetensors: header.x: expected an object, found an array");
    }
    SUBCASE("dtype") {
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.dtype: unknown dtype \"F17\" (known: BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, "
              "F16, BF16, I32, U32, F32, I64, U64, F64)");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.dtype: expected a string, found an integer");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x: missing key \"dtype\"");
        CHECK(parse_error(
                  safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", eight)) ==
              "f.safetensors: header.x: unexpected key \"extra\" (allowed: \"dtype\", \"shape\", \"data_offsets\")");
    }
    SUBCASE("wrong dtype for the byte count") {
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.data_offsets: [0, 8] holds 8 bytes, but shape [2] of F64 needs 16");
    }
    SUBCASE("shape") {
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.shape[1]: expected an integer >= 0, found -1");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.shape[0]: expected an integer, found a non-integer number");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.shape: expected an array, found a string");
        CHECK(parse_error(safetensors_bytes(
                  R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight)) ==
              "f.safetensors: header.x.shape: a tensor of this shape would exceed 2^64 bytes");
    }
    SUBCASE("data_offsets") {
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight)) ==
              "f.safetensors: header.x.data_offsets: expected [begin, end], found 1 elements");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight)) ==
              "f.safetensors: header.x.data_offsets: [8, 0] ends before it begins");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", eight)) ==
              "f.safetensors: header.x.data_offsets[1]: expected an integer, found a string");
        CHECK(parse_error(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", eight)) ==
              "f.safetensors: header.x.data_offsets: [8, 16] reaches beyond the data buffer of 8 bytes");
        CHECK(parse_error(safetensors_bytes(
                  R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775807,0]}})", eight)) ==
              "f.safetensors: header.x.data_offsets: [9223372036854775807, 0] ends before it begins");
    }
    SUBCASE("overlapping offsets") {
        CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                            eight)) ==
              "f.safetensors: tensors 'a' (data_offsets [0, 8]) and 'b' (data_offsets [4, 8]) overlap");
        CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                            eight)) ==
              "f.safetensors: tensors 'a' (data_offsets [0, 8]) and 'b' (data_offsets [0, 8]) overlap");
        CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                            R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                                            eight)) ==
              "f.safetensors: tensors 'a' (data_offsets [0, 8]) and 'z' (data_offsets [4, 4]) overlap");
    }
    SUBCASE("gap between tensors, unused trailing bytes") {
        CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                                            eight)) ==
              "f.safetensors: data bytes [4, 6) belong to no tensor (a gap before 'b'); the format requires the data "
              "to be packed");
        CHECK(parse_error(safetensors_bytes(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", eight)) ==
              "f.safetensors: data bytes [0, 6) belong to no tensor (a gap before 'b'); the format requires the data "
              "to be packed");
        CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight)) ==
              "f.safetensors: the last 4 bytes of the data buffer (from offset 4) belong to no tensor");
        CHECK(parse_error(safetensors_bytes("{}", {1})) ==
              "f.safetensors: the last 1 bytes of the data buffer (from offset 0) belong to no tensor");
    }
    SUBCASE("duplicate names") {
        CHECK(parse_error(safetensors_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                            R"("a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                                            eight)) ==
              "f.safetensors: header: invalid JSON at byte 53: duplicate key \"a\" "
              "(first at byte 1)");
    }
    SUBCASE("metadata values must be strings") {
        CHECK(parse_error(safetensors_bytes(R"({"__metadata__":{"format":"pt","epoch":3}})", {})) ==
              "f.safetensors: header.__metadata__.epoch: expected a string, found an integer");
        CHECK(parse_error(safetensors_bytes(R"({"__metadata__":["pt"]})", {})) ==
              "f.safetensors: header.__metadata__: expected an object, found an array");
    }
}

TEST_CASE("safetensors: load names the file when it cannot be read") {
    CHECK_THROWS_AS(safetensors_file::load("/nonexistent/nnmark/x.safetensors"), io_error);
    temp_dir dir;
    CHECK_THROWS_AS(safetensors_writer().write(dir.path / "no-such-dir" / "x.safetensors"), io_error);
}
