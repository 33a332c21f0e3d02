// trigger_kind: the four kinds of trigger and the two ways of labelling them, as enums,
// with the names that key files, reports and command lines use.
//
// - content: "TEST" (or a chosen text) stamped on images of a source class (Zhang et al.
//   2018); unrelated: images of another dataset; noise: a fixed Gaussian pattern added to
//   source images; natural: ordinary images of the task itself (Adi et al. 2018).
// - target: every trigger carries one target label (the paper's); random: each carries a
//   secret label drawn from the classes other than its image's (trigger_set.hpp).
// The names are part of the key file format: a recipe stores them as strings.
#pragma once

#include "nnmark/core/error.hpp"

#include <array>
#include <string>
#include <string_view>

namespace nnmark {

enum class trigger_kind { content, unrelated, noise, natural };
enum class trigger_labeling { target, random };

inline constexpr std::array<trigger_kind, 4> all_trigger_kinds = {trigger_kind::content, trigger_kind::unrelated,
                                                                  trigger_kind::noise, trigger_kind::natural};

inline std::string_view to_string(trigger_kind kind) {
    switch (kind) {
        case trigger_kind::content: return "content";
        case trigger_kind::unrelated: return "unrelated";
        case trigger_kind::noise: return "noise";
        case trigger_kind::natural: return "natural";
    }
    return "?";  // unreachable: every enumerator is named above
}

inline std::string_view to_string(trigger_labeling labeling) {
    return labeling == trigger_labeling::target ? "target" : "random";
}

// The kind named `name`; argument_error naming `where` (a flag, a key file's field) otherwise.
inline trigger_kind parse_trigger_kind(std::string_view name, std::string_view where) {
    for (trigger_kind kind : all_trigger_kinds)
        if (to_string(kind) == name) return kind;
    throw argument_error(std::string(where) + ": expected a trigger kind (content, unrelated, noise or natural), found '" +
                         std::string(name) + "'");
}

inline trigger_labeling parse_trigger_labeling(std::string_view name, std::string_view where) {
    if (name == "target") return trigger_labeling::target;
    if (name == "random") return trigger_labeling::random;
    throw argument_error(std::string(where) + ": expected a label mode (target or random), found '" + std::string(name) +
                         "'");
}

}  // namespace nnmark
