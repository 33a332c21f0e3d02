// Replays the predict_request fuzz corpus (tests/fuzz/corpus/predict_request/) through
// the calls its fuzz target makes, so every seed is a regression test without a fuzzing
// build: each must be read or refused with an nnmark::error. Seeds named valid-* must
// be read by at least one of the calls (a request for one of the items, or an answer),
// seeds named invalid-* by none, with messages that start with what was being read.
#include "nnmark/serve/classify_api.hpp"
#include "nnmark/serve/predict_request.hpp"
#include "nnmark/serve/predict_response.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <functional>

namespace nnmark::testing::predict_corpus_tests {

using reader = std::function<void(std::string_view)>;

// The calls of tests/fuzz/fuzz_predict_request.cpp.
std::vector<reader> fuzz_target_calls() {
    std::vector<reader> calls;
    for (const shape& item : {shape{1, 2, 2}, shape{3, 2, 2}, shape{1, 28, 28}}) {
        calls.push_back([item](std::string_view body) { (void)parse_predict_request(body, item, predict_limits{4}); });
        calls.push_back([item](std::string_view body) { (void)parse_classify_request(body, item, predict_limits{4}); });
    }
    for (const response_layout& layout : {response_layout{}, response_layout{"", true}})
        calls.push_back([layout](std::string_view body) { (void)read_prediction_labels(body, 2, layout, 10); });
    return calls;
}

TEST_CASE("serve fuzz corpus: every predict seed is read or refused with an nnmark::error") {
    const std::filesystem::path dir = source_dir() / "tests" / "fuzz" / "corpus" / "predict_request";
    REQUIRE(std::filesystem::is_directory(dir));
    int seeds = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        const bytes content = read_file(entry.path());
        const std::string body(content.begin(), content.end());
        INFO("seed " << name);
        int accepted = 0;
        for (const reader& read : fuzz_target_calls()) {
            try {
                read(body);
                ++accepted;
            } catch (const nnmark::error& e) {
                const std::string message = e.what();
                CHECK_MESSAGE((message.starts_with("request") || message.starts_with("response")), message);
            }
        }
        ++seeds;
        if (name.starts_with("valid-")) {
            CHECK(accepted > 0);
        } else {
            REQUIRE_MESSAGE(name.starts_with("invalid-"), "seed files are named valid-* or invalid-*");
            CHECK(accepted == 0);
        }
    }
    CHECK(seeds >= 10);
}

}  // namespace nnmark::testing::predict_corpus_tests
