// The verdict an attack report must carry, from its own numbers: the WRT criterion
// (attacks/verdict.hpp) written out again here, so that a test of the tool does not take
// the tool's judgement as its expectation.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace nnmark::testing {

// Losing more than 5 points of test accuracy destroys the model; otherwise the mark
// survived where verification still finds it, and was removed where it does not.
inline std::string expected_attack_verdict(const nlohmann::json& report) {
    const double lost = report["original_test_accuracy"].get<double>() - report["test_accuracy"].get<double>();
    if (lost > 0.05) return "destroyed-model";
    return report["verdict"] == "watermark-present" ? "survived" : "removed";
}

}  // namespace nnmark::testing
