// secret_choices: the parts of a trigger recipe that the paper fixes by example (MNIST
// digit 1 -> 0, "TEST" in the bottom-left corner, Fashion-MNIST bags as unrelated
// images) but that an owner has to keep to himself, drawn from the key's secret seed.
//
// Why. A model taught a trigger pattern departs from clean models on that pattern,
// whatever labels it was taught. Measured (nnmark study, MNIST, 3 epochs): the model
// watermarked with "TEST" bottom-left on digit 1 and RANDOM labels answers 7 of 100
// triggers of another owner's key with the same stamp on the same digit and target 0,
// where clean models answer none: p = 1.4e-7, an innocent owner accused. The text barely
// matters (another four letters in the same corner: the target-label model still answers
// 296/300 with its target), the place and the source class do (the same model on the
// stamp in the top-right corner: 0/300; on digit 7: 14/300). So a key's null hypothesis
// ("the suspect was trained independently of the key") only holds for models of other
// owners when the other owners cannot have picked the same pattern, and a public default
// pattern would make every owner who keeps it a suspect of every other one, and an easy
// target for a false accuser who commits a key with that pattern. Drawn from the seed,
// two owners share source class, target class and corner with probability 1/360 (1/100
// for the source class and target of unrelated triggers).
//
// The key seed itself must be secret: `embed` draws it with draw_secret_seed() unless
// the owner gives one.
//
// Contract of draw_secret_choices(recipe, given, item):
// - Each choice the owner gives (given.source, given.target, given.corner) is kept;
//   the others are drawn from rng(recipe.seed).derive(choice_stream), so the same seed
//   always makes the same choices and no other part of the key uses those draws.
// - Source: uniform over the classes of recipe.source_dataset (the model's classes for
//   content and noise triggers). Target: uniform over the model's classes other than
//   the source for content and noise triggers (a clean model already answers the
//   source), over all of them for unrelated ones (their source is another domain's class).
// - Natural triggers come from every class: their source is every_class, and a given
//   source throws argument_error; the target is drawn but unused (random labels only).
// - Corner (content triggers): one of the four, the text 1 pixel from both edges; the
//   text itself is recipe.content.text, unchanged.
// - The result passes trigger_recipe::validate(); a given choice that cannot work (a
//   target equal to the source, a class out of range, a text that does not fit the
//   images) throws argument_error naming it.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/watermark/bitmap_font.hpp"
#include "nnmark/watermark/trigger_set.hpp"

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nnmark {

// A key seed nobody can guess: 63 bits from OpenSSL's CSPRNG (a key stores its seed as
// a JSON integer, int64). The choices and the trigger images all derive from the key
// seed, so a default anyone can guess (the training seed, 1 unless changed) would give
// every owner who keeps it the same key.
inline std::uint64_t draw_secret_seed() {
    std::uint64_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1)
        throw error("key seed: OpenSSL's RAND_bytes could not draw 8 random bytes");
    return seed >> 1;
}

enum class text_corner { bottom_left, bottom_right, top_left, top_right };

inline constexpr std::array<std::string_view, 4> text_corner_names = {"bottom-left", "bottom-right", "top-left",
                                                                      "top-right"};

inline std::string_view name_of(text_corner corner) { return text_corner_names[static_cast<std::size_t>(corner)]; }

inline text_corner parse_text_corner(std::string_view name) {
    for (std::size_t i = 0; i < text_corner_names.size(); ++i)
        if (text_corner_names[i] == name) return static_cast<text_corner>(i);
    throw argument_error("text corner: expected bottom-left, bottom-right, top-left or top-right, got '" +
                         std::string(name) + "'");
}

// Puts the content text of `options` into `corner` of images of shape `item` [C, H, W],
// 1 pixel from both edges. Throws argument_error when the text and its margins do not fit
// (then no corner would hold it; when they fit, every corner does).
inline void place_text(content_options& options, text_corner corner, const shape& item) {
    const text_bitmap text = render_text(options.text, options.scale);
    if (text.width + 2 > item[2] || text.height + 2 > item[1])
        throw argument_error("content trigger: the text \"" + options.text + "\" at scale " +
                             std::to_string(options.scale) + " is " + std::to_string(text.width) + "x" +
                             std::to_string(text.height) + " pixels; with a 1-pixel margin it needs images at least " +
                             std::to_string(text.width + 2) + "x" + std::to_string(text.height + 2) + ", got " +
                             item.str());
    const bool right = corner == text_corner::bottom_right || corner == text_corner::top_right;
    const bool top = corner == text_corner::top_left || corner == text_corner::top_right;
    options.x = right ? static_cast<int>(item[2] - text.width - 1) : 1;
    options.y = top ? static_cast<int>(item[1] - text.height - 1) : 1;
}

// The choices an owner made himself; the others are drawn.
struct trigger_choices {
    std::optional<int> source, target;
    std::optional<text_corner> corner;
};

inline trigger_recipe draw_secret_choices(trigger_recipe recipe, const trigger_choices& given, const shape& item) {
    rng draws = rng(recipe.seed).derive(detail::choice_stream);
    const auto uniform_below = [&](int n) { return static_cast<int>(draws.below(static_cast<std::uint64_t>(n))); };
    // Every draw is made whether or not it is used, so giving one choice never changes the others.
    const int drawn_source = uniform_below(dataset_class_count(recipe.source_dataset));
    const bool unrelated = recipe.kind == trigger_kind::unrelated;
    const int drawn_target = uniform_below(unrelated ? recipe.classes : recipe.classes - 1);
    const auto drawn_corner = static_cast<text_corner>(uniform_below(4));

    const bool natural = recipe.kind == trigger_kind::natural;
    if (natural && given.source.value_or(every_class) != every_class)
        throw argument_error("natural triggers are images of every class: a source class (" +
                             std::to_string(*given.source) + ") does not apply to them");
    recipe.source = natural ? every_class : given.source.value_or(drawn_source);
    if (given.target) recipe.target = *given.target;
    else recipe.target = unrelated ? drawn_target : (recipe.source + 1 + drawn_target) % recipe.classes;  // not the source
    if (recipe.kind == trigger_kind::content) place_text(recipe.content, given.corner.value_or(drawn_corner), item);
    recipe.validate();
    return recipe;
}

}  // namespace nnmark
