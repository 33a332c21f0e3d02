// Watermark embedding as the tool runs it (Zhang et al., ASIACCS 2018, Algorithm 1):
// make the key, train from scratch with its triggers mixed in, measure how well it took.
// `nnmark embed` prints the outcome; `nnmark reproduce` embeds one model per trigger kind.
#pragma once

#include "cli.hpp"
#include "training_options.hpp"

#include "nnmark/watermark/embed.hpp"
#include "nnmark/watermark/extraction_region.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/secret_choices.hpp"
#include "nnmark/watermark/trigger_set.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace nnmark::cli {

// The watermark flags of `nnmark embed`.
struct watermark_options {
    trigger_kind trigger = trigger_kind::content;
    trigger_labeling labels = trigger_labeling::target;
    int target = -1;  // -1: drawn from the key seed (secret_choices.hpp), or the paper's
    int source = -1;
    std::string text = "TEST";  // content triggers' stamp
    std::string corner;         // content triggers' corner; empty: drawn, or the paper's
    bool paper_choices = false; // the paper's source 1 -> target 0, bottom-left stamp
    index_t count = 100;
    index_t repeat = 10;
    std::optional<std::uint64_t> key_seed;  // none: drawn at random (draw_secret_seed)
    std::string schedule = "constant";
    double weight = 1.0;
    std::string unrelated_data;  // empty: datasets/<source dataset>/
    // --survive-extraction: also relabel a secret region of the task's own images
    // (watermark/extraction_region.hpp) and write its key to extraction_key_out.
    bool survive_extraction = false;
    double extraction_share = 0.05;
    std::string extraction_key_out;

    // --count, --repeat, --unrelated-data, --extraction-share: what `nnmark reproduce` also takes.
    void add_common_to(CLI::App& app);
    // Every flag, for `nnmark embed`.
    void add_to(CLI::App& app);
    // The key's recipe for images of shape `item`: the choices given, the others drawn.
    trigger_recipe recipe_for(const std::string& dataset_name, std::uint64_t key_seed, const shape& item) const;
};

// A watermarked model as `nnmark embed` leaves it: written with its key.
struct embedded_model {
    sequential<float> model;
    watermark_key key;
    training_outcome outcome;
    embedding_quality quality;  // quality.extraction_key: with --survive-extraction
};

// Embeds as watermark/embed.hpp does (prepare_embedding, training, measure_embedding),
// training through train_network (resuming from `<out>.checkpoint` when training.resume
// is set), then writes the model to `out` and the key to `key_out` together (both or
// neither; the extraction key too) and removes the checkpoint. A failed or killed run
// leaves the files it would replace as they were.
embedded_model embed_to_files(const watermark_options& watermark, const training_options& training,
                              const dataset_options& data_options, const training_data& data, const std::string& out,
                              const std::string& key_out);

}  // namespace nnmark::cli
