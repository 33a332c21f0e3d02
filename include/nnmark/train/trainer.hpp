// trainer: the minibatch training loop (shuffle, forward, loss, backward, step),
// evaluation after every epoch, a checkpoint after every epoch, and resume.
//
// Determinism: the order of epoch e is drawn from rng(seed).derive(e) and the dropout
// masks of step s from rng(seed).derive(mask_stream + s). Nothing depends on what ran
// before, so a run resumed from the checkpoint of epoch e continues bit-identically to
// one that was never interrupted (same seed, same thread count).
//
// Watermark embedding (Zhang et al., Algorithm 1) trains on the clean data plus the
// trigger set, each trigger repeated a few times per epoch; the trainer only needs the
// extra set, its repeats and how much its loss weighs in each epoch: loss = (sum over
// clean + lambda(epoch) x sum over triggers of the cross-entropy) / batch size.
// lambda = 1 is plain mixing, the paper's case.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/sha256.hpp"
#include "nnmark/data/batches.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/optim/schedule.hpp"
#include "nnmark/train/checkpoint.hpp"
#include "nnmark/train/data_parallel.hpp"
#include "nnmark/train/evaluate.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace nnmark {

struct epoch_summary {
    int epoch = 0;  // 1-based
    double clean_loss = 0;
    double trigger_loss = std::numeric_limits<double>::quiet_NaN();  // NaN without triggers
    double train_accuracy = 0;
    double test_accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN without a test set
    double learning_rate = 0;
    double seconds = 0;
    double images_per_second = 0;
};

// A set mixed into every epoch besides the training data (the watermark's triggers).
struct extra_training_set {
    const dataset* data = nullptr;
    index_t repeats = 1;                      // times each item is visited per epoch
    std::function<double(int epoch)> weight;  // lambda of a 0-based epoch; empty: 1
};

template <class T>
class trainer {
public:
    trainer(sequential<T>& model, training_recipe recipe)
        : model_(model), recipe_(std::move(recipe)), passes_(model) {
        recipe_.validate();
        optimizer_ = make_optimizer<T>(recipe_);
    }

    void set_extra_set(extra_training_set extra) {
        if (!extra.data) throw argument_error("trainer: the extra training set is missing");
        extra_ = std::move(extra);
    }
    // Write a checkpoint to `path` after every epoch.
    void set_checkpoint(std::filesystem::path path) { checkpoint_ = std::move(path); }
    // Called after every epoch with its summary.
    void on_epoch(std::function<void(const epoch_summary&)> callback) { on_epoch_ = std::move(callback); }
    // Called after every optimizer step (fine-pruning keeps pruned filters at zero with it).
    void on_step(std::function<void()> callback) { on_step_ = std::move(callback); }
    // Distillation from scores: train towards target distributions instead of the labels.
    // Row i of `targets` [train size, K] is the target of training item i; items of an
    // extra set keep their one-hot labels. `targets` must outlive fit().
    void set_soft_targets(const tensor<T>& targets) { soft_targets_ = &targets; }

    // Continue from the checkpoint file if there is one; returns the epochs already done.
    // `train` is the data fit() will get: a checkpoint made from other data, another
    // architecture or another extra set is refused (checkpoint.hpp), naming what differs.
    int resume(const dataset& train) {
        if (!checkpoint_ || !std::filesystem::exists(*checkpoint_)) return 0;
        epochs_done_ = load_checkpoint(*checkpoint_, model_, *optimizer_, recipe_, run_identity(train));
        return epochs_done_;
    }

    // What this run trains, as its checkpoints record it: SHA-256 digests of the
    // architecture (layer kinds and configurations), the training data (images, labels)
    // and the extra set with its repeats and per-epoch weights ("none" without one).
    json run_identity(const dataset& train) const {
        json run = json::object();
        run["architecture"] = sha256_hex(architecture_json(model_));
        run["data"] = dataset_digest(train);
        std::string extra = "none";
        if (extra_) {
            // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on the chain of operator+.
            extra = dataset_digest(*extra_->data);
            extra += " x";
            extra += std::to_string(extra_->repeats);
            extra += " weights";
            for (int e = 0; e < recipe_.epochs; ++e) {
                extra += ' ';
                extra += std::to_string(extra_->weight ? extra_->weight(e) : 1.0);
            }
            extra = sha256_hex(extra);
        }
        run["triggers"] = extra;
        return run;
    }

    std::vector<epoch_summary> fit(const dataset& train, const dataset* test, progress_line& progress) {
        if (!(train.item_shape() == model_.input_item()))
            throw shape_error("trainer: dataset '" + train.name + "' has images " + train.item_shape().str() +
                              ", the model expects " + model_.input_item().str());
        if (soft_targets_)
            expect_shape(*soft_targets_, model_.output_item().prepend(train.size()), "trainer (soft targets)");
        std::vector<epoch_summary> summaries;
        const json run = checkpoint_ ? run_identity(train) : json::object();
        for (int epoch = epochs_done_; epoch < recipe_.epochs; ++epoch) {
            epoch_summary s = train_epoch(train, epoch, progress);
            if (test) s.test_accuracy = evaluate(model_, *test).accuracy();
            progress.finish(describe(s));
            epochs_done_ = epoch + 1;
            if (checkpoint_) save_checkpoint(*checkpoint_, model_, *optimizer_, recipe_, epochs_done_, run);
            if (on_epoch_) on_epoch_(s);
            summaries.push_back(s);
        }
        return summaries;
    }

private:
    using clock = std::chrono::steady_clock;

    static std::string dataset_digest(const dataset& d) {
        sha256 h;
        h.update(std::span<const unsigned char>(d.images.span().data(), d.images.span().size()));
        h.update(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(d.labels.data()),
                                                d.labels.size() * sizeof(int)));
        h.update("classes " + std::to_string(d.classes) + " shape " + d.images.shape().str());
        return to_hex(h.finish());
    }
    static constexpr std::uint64_t mask_stream = 1ULL << 40;  // dropout streams start here

    epoch_summary train_epoch(const dataset& train, int epoch, progress_line& progress) {
        minibatch_sampler sampler(train.size(), recipe_.batch, recipe_.seed);
        std::vector<const dataset*> sources = {&train};
        if (extra_) {
            sampler.add_source(extra_->data->size(), extra_->repeats);
            sources.push_back(extra_->data);
        }
        const std::vector<batch_entry> order = sampler.epoch_order(static_cast<std::uint64_t>(epoch));
        const index_t steps = sampler.batches_per_epoch();
        const schedule lr = parse_schedule(recipe_.schedule, recipe_.learning_rate, recipe_.epochs);
        const double lambda = extra_ && extra_->weight ? extra_->weight(epoch) : 1.0;
        const rng root(recipe_.seed);
        sums totals;
        const auto start = clock::now();
        for (index_t step = 0; step < steps; ++step) {
            optimizer_->set_learning_rate(lr.at(epoch + static_cast<double>(step) / static_cast<double>(steps)));
            rng masks = root.derive(mask_stream + static_cast<std::uint64_t>(epoch * steps + step));
            train_step(sources, sampler.batch(order, step), lambda, masks, totals);
            const double seconds = std::chrono::duration<double>(clock::now() - start).count();
            progress.update(describe_running(epoch, step + 1, steps, totals, seconds));
        }
        epoch_summary s;
        s.epoch = epoch + 1;
        s.clean_loss = totals.clean_loss / std::max(1.0, totals.clean_count);
        if (totals.trigger_count > 0) s.trigger_loss = totals.trigger_loss / totals.trigger_count;
        s.train_accuracy = totals.correct / std::max(1.0, totals.images);
        s.learning_rate = optimizer_->learning_rate();
        s.seconds = std::chrono::duration<double>(clock::now() - start).count();
        s.images_per_second = totals.images / std::max(1e-9, s.seconds);
        return s;
    }

    struct sums {
        double clean_loss = 0, trigger_loss = 0, clean_count = 0, trigger_count = 0, correct = 0, images = 0;
    };

    void train_step(std::span<const dataset* const> sources, std::span<const batch_entry> batch, double lambda,
                    rng& masks, sums& totals) {
        const auto n = batch.size();
        gather_batch(sources, batch, images_, labels_);
        loss_weights_.resize(n);
        extra_mask_.resize(n);
        clean_mask_.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            const bool extra = batch[i].source != 0;
            loss_weights_[i] = static_cast<T>(extra ? lambda : 1.0);
            extra_mask_[i] = extra ? T(1) : T(0);
            clean_mask_[i] = extra ? T(0) : T(1);
        }
        const tensor<T>& logits = passes_.forward(images_, masks);
        if (soft_targets_) softmax_cross_entropy(logits, gather_soft_targets(batch), &grad_logits_, loss_weights_);
        else softmax_cross_entropy(logits, labels_, &grad_logits_, loss_weights_);
        passes_.backward(grad_logits_);
        optimizer_->step(model_);
        if (on_step_) on_step_();

        // For the progress line and the epoch log: the same loss, split by set (the
        // masks zero the other set's rows, and the mean divides by n).
        const double batch_size = static_cast<double>(n);
        const double extras = std::accumulate(extra_mask_.begin(), extra_mask_.end(), 0.0);
        totals.clean_loss += batch_size * static_cast<double>(softmax_cross_entropy(logits, labels_, nullptr, clean_mask_));
        totals.clean_count += batch_size - extras;
        if (extras > 0) {
            totals.trigger_loss += batch_size * static_cast<double>(softmax_cross_entropy(logits, labels_, nullptr, extra_mask_));
            totals.trigger_count += extras;
        }
        const std::vector<int> predicted = argmax_rows(logits);
        for (std::size_t i = 0; i < n; ++i) totals.correct += predicted[i] == labels_[i];
        totals.images += batch_size;
    }

    // The soft target rows of a batch (one-hot labels for items of the extra set).
    const tensor<T>& gather_soft_targets(std::span<const batch_entry> batch) {
        const index_t classes = soft_targets_->shape()[1];
        targets_.resize(shape{static_cast<index_t>(batch.size()), classes});
        for (std::size_t i = 0; i < batch.size(); ++i) {
            T* row = targets_.item(static_cast<index_t>(i)).data();
            if (batch[i].source == 0) std::ranges::copy(soft_targets_->item(batch[i].index), row);
            else for (index_t k = 0; k < classes; ++k) row[k] = k == labels_[i] ? T(1) : T(0);
        }
        return targets_;
    }

    std::string describe_running(int epoch, index_t step, index_t steps, const sums& t, double seconds) const {
        const double images_per_second = t.images / std::max(1e-9, seconds);
        const double epoch_fraction = static_cast<double>(step) / static_cast<double>(steps);
        const double remaining_epochs = recipe_.epochs - epoch - epoch_fraction;
        const double eta = seconds / epoch_fraction * remaining_epochs;
        char line[256];
        std::snprintf(line, sizeof line, "epoch %d/%d  %3.0f%%  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s", epoch + 1,
                      recipe_.epochs, 100 * epoch_fraction, t.clean_loss / std::max(1.0, t.clean_count),
                      100 * t.correct / std::max(1.0, t.images), images_per_second, format_duration(eta).c_str());
        return line;
    }

    std::string describe(const epoch_summary& s) const {
        char line[320];
        int used = std::snprintf(line, sizeof line, "epoch %d/%d  loss %.4f", s.epoch, recipe_.epochs, s.clean_loss);
        if (!std::isnan(s.trigger_loss))
            used += std::snprintf(line + used, sizeof line - static_cast<std::size_t>(used), "  trigger loss %.4f", s.trigger_loss);
        used += std::snprintf(line + used, sizeof line - static_cast<std::size_t>(used), "  train acc %.2f%%",
                              100 * s.train_accuracy);
        if (!std::isnan(s.test_accuracy))
            used += std::snprintf(line + used, sizeof line - static_cast<std::size_t>(used), "  test acc %.2f%%",
                                  100 * s.test_accuracy);
        std::snprintf(line + used, sizeof line - static_cast<std::size_t>(used), "  lr %.4g  %.0f img/s  %s",
                      s.learning_rate, s.images_per_second, format_duration(s.seconds).c_str());
        return line;
    }

    sequential<T>& model_;
    training_recipe recipe_;
    std::unique_ptr<optimizer<T>> optimizer_;
    std::optional<extra_training_set> extra_;
    std::optional<std::filesystem::path> checkpoint_;
    std::function<void(const epoch_summary&)> on_epoch_;
    std::function<void()> on_step_;
    const tensor<T>* soft_targets_ = nullptr;
    int epochs_done_ = 0;

    // Reused from step to step: no allocation in the steady state.
    data_parallel<T> passes_;  // forward and backward, the batch split among the threads
    tensor<T> images_, grad_logits_, targets_;
    std::vector<int> labels_;
    std::vector<T> loss_weights_, extra_mask_, clean_mask_;
};

}  // namespace nnmark
