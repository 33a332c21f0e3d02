// The WRT verdict: removed only when the watermark is gone and the model still useful.
#include "nnmark/attacks/verdict.hpp"

#include <doctest/doctest.h>

using namespace nnmark;

TEST_CASE("verdict: removed, survived or destroyed-model, at a 5-point accuracy budget") {
    CHECK(judge_attack(0.99, 0.97, false) == attack_verdict::removed);
    CHECK(judge_attack(0.99, 0.97, true) == attack_verdict::survived);
    CHECK(judge_attack(0.99, 0.93, false) == attack_verdict::destroyed_model);
    CHECK(judge_attack(0.99, 0.93, true) == attack_verdict::destroyed_model);
    CHECK(judge_attack(0.90, 0.95, false) == attack_verdict::removed);  // an attack may even help
    CHECK(judge_attack(0.99, 0.95, false, 0.01) == attack_verdict::destroyed_model);
    CHECK(to_string(attack_verdict::destroyed_model) == "destroyed-model");
    CHECK(to_string(attack_verdict::removed) == "removed");
}
