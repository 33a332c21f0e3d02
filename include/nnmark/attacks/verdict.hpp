// verdict: did a removal attack work? The criterion of the Watermark Robustness Toolbox
// (Lukas et al., "SoK: How Robust is Image Classification Deep Neural Network
// Watermarking?", IEEE S&P 2022): an attack removes a watermark when verification no
// longer finds it while the model stays useful, i.e. its test accuracy is within 5
// points of the original's. An attack that costs more accuracy than that has destroyed
// the model a thief wanted to steal, whatever verification says.
#pragma once

#include <string>

namespace nnmark {

enum class attack_verdict { removed, survived, destroyed_model };

// Largest test-accuracy loss (a fraction: 0.05 = 5 points) an attack may cost.
inline constexpr double useful_accuracy_drop = 0.05;

inline attack_verdict judge_attack(double original_accuracy, double attacked_accuracy, bool watermark_present,
                                   double max_drop = useful_accuracy_drop) {
    if (original_accuracy - attacked_accuracy > max_drop) return attack_verdict::destroyed_model;
    return watermark_present ? attack_verdict::survived : attack_verdict::removed;
}

// "removed", "survived", "destroyed-model".
inline std::string to_string(attack_verdict v) {
    constexpr const char* names[] = {"removed", "survived", "destroyed-model"};
    return names[static_cast<int>(v)];
}

}  // namespace nnmark
