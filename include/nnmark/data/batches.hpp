// batches: the deterministic order in which training visits items, cut into minibatches.
//
// An epoch is a list of entries (source, index): source 0 is the training set the
// sampler was made for, sources 1, 2, ... are extra sets added with add_source, each
// entered `repeats` times per epoch (the watermark mixes 100 triggers x 10 repeats into
// every epoch this way). epoch_order(e) shuffles the whole list with rng(seed).derive(e),
// so every epoch is a permutation of the same entries (each training item exactly once),
// it depends only on the seed and the epoch number, and resuming at epoch e needs no
// replay of earlier epochs. Batch b is entries [b * batch_size, (b + 1) * batch_size)
// of that order; the last batch keeps the remainder (it is never dropped).
//
// gather_batch turns a batch of entries into a float tensor [n, C, H, W] (x / 255) and
// n labels, taking entry k from sources[entry.source], in batch order.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/data/dataset.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nnmark {

struct batch_entry {
    int source = 0;     // 0: the training set; 1, 2, ...: sets added with add_source
    index_t index = 0;  // item within that source
    friend bool operator==(const batch_entry&, const batch_entry&) = default;
};

class minibatch_sampler {
public:
    minibatch_sampler(index_t items, index_t batch_size, std::uint64_t seed) : batch_size_(batch_size), seed_(seed) {
        if (batch_size < 1)
            throw argument_error("minibatch_sampler: batch size must be at least 1, got " + std::to_string(batch_size));
        add_source(items, 1);
    }

    // Adds a set of `items` items, each visited `repeats` times per epoch; returns its source number.
    int add_source(index_t items, index_t repeats = 1) {
        if (items < 0 || repeats < 0)
            throw argument_error("minibatch_sampler: a source needs items >= 0 and repeats >= 0, got " +
                                 std::to_string(items) + " items x " + std::to_string(repeats) + " repeats");
        sources_.push_back({items, repeats});
        return static_cast<int>(sources_.size()) - 1;
    }

    index_t batch_size() const { return batch_size_; }

    // Entries per epoch: every source's items times its repeats.
    index_t epoch_size() const {
        index_t total = 0;
        for (const auto& s : sources_) total += s.items * s.repeats;
        return total;
    }

    index_t batches_per_epoch() const { return (epoch_size() + batch_size_ - 1) / batch_size_; }

    // All entries of epoch `epoch`, shuffled; cut it with batch().
    std::vector<batch_entry> epoch_order(std::uint64_t epoch) const {
        std::vector<batch_entry> order;
        order.reserve(static_cast<std::size_t>(epoch_size()));
        for (std::size_t s = 0; s < sources_.size(); ++s)
            for (index_t r = 0; r < sources_[s].repeats; ++r)
                for (index_t i = 0; i < sources_[s].items; ++i) order.push_back({static_cast<int>(s), i});
        rng(seed_).derive(epoch).shuffle(order);
        return order;
    }

    // Batch `b` of an epoch order (shorter for the last batch).
    std::span<const batch_entry> batch(std::span<const batch_entry> order, index_t b) const {
        const index_t begin = b * batch_size_;
        if (b < 0 || begin >= static_cast<index_t>(order.size()))
            throw argument_error("minibatch_sampler: batch " + std::to_string(b) + " is outside an epoch of " +
                                 std::to_string(order.size()) + " entries in batches of " +
                                 std::to_string(batch_size_));
        const index_t end = std::min(begin + batch_size_, static_cast<index_t>(order.size()));
        return order.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
    }

private:
    struct source {
        index_t items;
        index_t repeats;
    };
    index_t batch_size_;
    std::uint64_t seed_;
    std::vector<source> sources_;
};

// x = the images of `entries` / 255 as [n, C, H, W], labels = their labels, with entry k
// taken from sources[entries[k].source]. All sources must have the same item shape.
// Reuses x's and labels' allocations.
template <class T>
void gather_batch(std::span<const dataset* const> sources, std::span<const batch_entry> entries, tensor<T>& x,
                  std::vector<int>& labels) {
    if (sources.empty()) throw argument_error("gather_batch: no source datasets given");
    const shape item = sources[0]->item_shape();
    for (const dataset* s : sources)
        if (!(s->item_shape() == item))
            throw shape_error("gather_batch: dataset '" + s->name + "' has items " + s->item_shape().str() +
                              ", dataset '" + sources[0]->name + "' has " + item.str());
    x.resize(item.prepend(static_cast<index_t>(entries.size())));
    labels.clear();
    for (std::size_t k = 0; k < entries.size(); ++k) {
        const batch_entry e = entries[k];
        if (e.source < 0 || static_cast<std::size_t>(e.source) >= sources.size())
            throw argument_error("gather_batch: entry " + std::to_string(k) + " names source " +
                                 std::to_string(e.source) + " but " + std::to_string(sources.size()) + " were given");
        const dataset& from = *sources[static_cast<std::size_t>(e.source)];
        const index_t i = from.checked_index(e.index);
        detail::bytes_to_unit(from.images.item(i), x.item(static_cast<index_t>(k)).data());
        labels.push_back(from.labels[static_cast<std::size_t>(i)]);
    }
}

}  // namespace nnmark
