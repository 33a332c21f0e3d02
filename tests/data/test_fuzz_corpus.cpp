// Replays every seed file of the IDX and CIFAR-10 fuzz corpora (tests/fuzz/corpus/)
// through the parsers the fuzz targets call: each must load or throw nnmark::error,
// nothing else. Files named valid-* must load, files named invalid-* must be rejected
// with a message that starts with the file's name.
#include "nnmark/data/cifar10.hpp"
#include "nnmark/data/idx.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <functional>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

using parser = std::function<void(std::span<const unsigned char>, const std::string&)>;

// Runs every file of corpus/<name>/ through `parsers` (the calls its fuzz target makes).
void replay_corpus(const std::string& name, const std::vector<parser>& parsers) {
    const std::filesystem::path dir = source_dir() / "tests" / "fuzz" / "corpus" / name;
    INFO("corpus " << dir.string());
    REQUIRE(std::filesystem::is_directory(dir));
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string file = entry.path().filename().string();
        const bytes content = read_file(entry.path());
        int accepted = 0;
        std::vector<std::string> messages;
        for (const parser& parse : parsers) {
            try {
                parse(content, file);
                ++accepted;
            } catch (const nnmark::error& e) {
                messages.push_back(e.what());
            }
        }
        INFO("seed " << file);
        ++files;
        if (file.starts_with("valid-")) {
            CHECK(accepted > 0);
        } else {
            REQUIRE_MESSAGE(file.starts_with("invalid-"), "seed files are named valid-* or invalid-*");
            CHECK(accepted == 0);
            for (const std::string& message : messages) CHECK_MESSAGE(message.starts_with(file + ": "), message);
        }
    }
    CHECK(files >= 5);
}

}  // namespace

TEST_CASE("fuzz corpus: every IDX seed loads or throws nnmark::error naming the file") {
    replay_corpus("idx",
                  {[](std::span<const unsigned char> b, const std::string& f) { (void)parse_idx_images(b, f); },
                   [](std::span<const unsigned char> b, const std::string& f) { (void)parse_idx_labels(b, f); }});
}

TEST_CASE("fuzz corpus: every CIFAR-10 seed loads or throws nnmark::error naming the file") {
    replay_corpus("cifar10",
                  {[](std::span<const unsigned char> b, const std::string& f) { (void)parse_cifar10(b, f); }});
}
