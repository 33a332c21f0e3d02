// Replays the safetensors fuzz corpus (tests/fuzz/corpus/safetensors/) through the
// reader, so every input the fuzzer ever kept is also a regression test without a
// fuzzing build. Every file must load or throw nnmark::error; the hand-made seeds say
// which by their name: "valid-*" must load, "invalid-*" must be a format_error.
#include "nnmark/model/safetensors.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

using namespace nnmark;
namespace fs = std::filesystem;

namespace {

fs::path corpus_dir() { return testing::source_dir() / "tests" / "fuzz" / "corpus" / "safetensors"; }

// The tensors a well-formed file declares, read without the reader under test: the
// header's JSON keys (after its 8-byte little-endian length) other than __metadata__.
std::size_t declared_tensors(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char length_bytes[8] = {};
    in.read(reinterpret_cast<char*>(length_bytes), 8);
    std::uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = length << 8 | length_bytes[i];
    std::string header(static_cast<std::size_t>(length), '\0');
    in.read(header.data(), static_cast<std::streamsize>(length));
    const auto json = nlohmann::json::parse(header);
    return json.size() - (json.contains("__metadata__") ? 1 : 0);
}

}  // namespace

TEST_CASE("safetensors fuzz corpus: every file loads or is rejected with an nnmark::error") {
    const fs::path dir = corpus_dir();
    REQUIRE_MESSAGE(fs::is_directory(dir), "corpus directory not found: " << dir.string());
    int valid = 0, invalid = 0, other = 0;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        const std::string name = entry.path().filename().string();
        CAPTURE(name);
        if (name.starts_with("valid-")) {
            CHECK(safetensors_file::load(entry.path()).entries().size() == declared_tensors(entry.path()));
            ++valid;
        } else if (name.starts_with("invalid-")) {
            CHECK_THROWS_AS(safetensors_file::load(entry.path()), format_error);
            ++invalid;
        } else {
            try {
                safetensors_file::load(entry.path());
            } catch (const error&) {
                // A rejection with a message is a correct outcome for a fuzzer input.
            }
            ++other;
        }
    }
    // The hand-made seeds are all there (a missing directory content would pass vacuously).
    CHECK(valid >= 7);
    CHECK(invalid >= 20);
    MESSAGE("replayed " << valid << " valid, " << invalid << " invalid and " << other << " fuzzer-found files");
}

TEST_CASE("safetensors fuzz corpus: the seeds fail for the reason their name says") {
    const fs::path dir = corpus_dir();
    const auto mentions = [&](const char* name, const char* what) {
        CAPTURE(name);
        const std::string m = testing::thrown_message<format_error>([&] { safetensors_file::load(dir / name); });
        CHECK_MESSAGE(m.find(what) != std::string::npos, m);
    };
    mentions("invalid-too-short", "too short for the 8-byte header length");
    mentions("invalid-header-length-beyond-file", "header length 1000 exceeds the 64 bytes that follow");
    mentions("invalid-header-length-over-limit", "exceeds the limit of 100000000 bytes");
    mentions("invalid-header-not-json", "header: invalid JSON at byte");
    mentions("invalid-header-not-object", "header: expected an object, found an array");
    mentions("invalid-unknown-dtype", "unknown dtype \"F17\"");
    mentions("invalid-negative-shape", "header.x.shape[0]: expected an integer >= 0, found -2");
    mentions("invalid-size-mismatch", "holds 8 bytes, but shape [2] of F64 needs 16");
    mentions("invalid-offsets-reversed", "[8, 0] ends before it begins");
    mentions("invalid-offsets-beyond-data", "[4, 12] reaches beyond the data buffer of 8 bytes");
    mentions("invalid-overlap", "tensors 'a' (data_offsets [0, 8]) and 'b' (data_offsets [4, 8]) overlap");
    mentions("invalid-gap", "data bytes [4, 6) belong to no tensor");
    mentions("invalid-trailing-bytes", "the last 4 bytes of the data buffer (from offset 4) belong to no tensor");
    mentions("invalid-duplicate-name", "duplicate key \"a\"");
    mentions("invalid-metadata-not-string", "header.__metadata__.epoch: expected a string, found an integer");
    mentions("invalid-extra-key", "unexpected key \"strides\"");
    mentions("invalid-deep-nesting", "nesting deeper than 256 levels");
    mentions("invalid-bad-utf8", "invalid string: ill-formed UTF-8 byte");
    mentions("invalid-lone-surrogate", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
    mentions("invalid-shape-overflow", "a tensor of this shape would exceed 2^64 bytes");
}
