// finetune: the four fine-tuning attacks of Adi et al., "Turning Your Weakness Into a
// Strength: Watermarking Deep Neural Networks by Backdooring" (USENIX Security 2018),
// Sec. 5.2; FTAL is the attack of Zhang et al. (ASIACCS 2018), Table 5.
//
//   FTLL  fine-tune the last layer only, every other layer frozen;
//   FTAL  fine-tune all layers;
//   RTLL  re-initialise the last layer from a seed, then train it alone;
//   RTAL  re-initialise the last layer, then train all layers.
// "The last layer" is the last layer with parameters (the output dense layer). Training
// is the ordinary trainer (train/trainer.hpp) on the attacker's labelled data
// (attacks/attacker_data.hpp); freezing is sequential::set_frozen, under which backward
// adds no gradient and the optimizer skips the layer, so frozen weights stay
// bit-identical. (A frozen batch-norm layer would still update its running statistics in
// training mode; the paper's networks have none.) Every layer is unfrozen on return.
//
// Budget: the training recipe: epochs and learning rate on the attacker's data.
// finetune_recipe() is nnmark's default: 10 epochs of SGD with Nesterov momentum 0.9 at
// a constant learning rate 0.01, the paper's training rate, a fifth of nnmark's own
// (a fine-tuner keeps what the model knows rather than retraining it), batch 64.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

enum class finetune_mode { ftll, ftal, rtll, rtal };

inline finetune_mode parse_finetune_mode(std::string_view name) {
    if (name == "ftll") return finetune_mode::ftll;
    if (name == "ftal") return finetune_mode::ftal;
    if (name == "rtll") return finetune_mode::rtll;
    if (name == "rtal") return finetune_mode::rtal;
    throw argument_error("finetune: expected mode ftll, ftal, rtll or rtal, got '" + std::string(name) + "'");
}

inline std::string to_string(finetune_mode mode) {
    constexpr const char* names[] = {"ftll", "ftal", "rtll", "rtal"};
    return names[static_cast<int>(mode)];
}

inline bool retrains_only_last_layer(finetune_mode mode) { return mode == finetune_mode::ftll || mode == finetune_mode::rtll; }
inline bool reinitializes_last_layer(finetune_mode mode) { return mode == finetune_mode::rtll || mode == finetune_mode::rtal; }

// The attacks' default budget (see the header comment); set epochs and lr to taste.
inline training_recipe finetune_recipe() {
    training_recipe r;
    r.epochs = 10;
    r.batch = 64;
    r.learning_rate = 0.01;
    r.schedule = "constant";
    return r;
}

namespace detail {

// Unfreezes every layer of `model` when it goes out of scope, also when training throws.
template <class T>
struct unfreeze_on_exit {
    sequential<T>& model;
    ~unfreeze_on_exit() {
        for (int i = 0; i < model.size(); ++i) model.set_frozen(i, false);
    }
};

}  // namespace detail

// Index of the last layer that has parameters.
template <class T>
int last_parametric_layer(const sequential<T>& model) {
    for (int i = model.size() - 1; i >= 0; --i)
        if (!model.at(i).param_specs().empty()) return i;
    throw argument_error("finetune: the model has no layer with parameters");
}

// Fresh initial values for layer `index`, drawn from `seed` only.
template <class T>
void reinitialize_layer(sequential<T>& model, int index, std::uint64_t seed) {
    rng random(seed);
    model.at(index).initialize(random);
}

// Fine-tune `model` on `attacker` with one of Adi et al.'s four modes; the
// re-initialisation of RT* draws from recipe.seed. `evaluation`, when given, is scored
// after every epoch. Returns the trainer's epoch summaries.
template <class T>
std::vector<epoch_summary> finetune(sequential<T>& model, const dataset& attacker, finetune_mode mode,
                                    const training_recipe& recipe, progress_line& progress,
                                    const dataset* evaluation = nullptr) {
    const int last = last_parametric_layer(model);
    if (reinitializes_last_layer(mode)) reinitialize_layer(model, last, recipe.seed);
    for (int i = 0; i < model.size(); ++i) model.set_frozen(i, retrains_only_last_layer(mode) && i != last);
    const detail::unfreeze_on_exit<T> unfreeze{model};
    trainer<T> t(model, recipe);
    return t.fit(attacker, evaluation, progress);
}

}  // namespace nnmark
