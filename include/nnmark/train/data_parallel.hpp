// data_parallel: a training step's forward and backward passes with the batch split
// into shards, each run through the whole network on a thread of its own.
//
// Why: the layers parallelize inside themselves too (over images, over rows of a
// product), but then the threads meet at every layer, about thirty times a step, and
// on a shared machine one of them is always a little late. Shards meet twice a step:
// after the forward pass (the loss needs every item's logits) and after the backward
// pass (the gradients are summed). Measured on paper-mnist, batch 128, 2 threads
// against 1: 1.66-1.77x faster by layers, 1.90-2.02x by shards.
//
// Shard s of S takes items [n s / S, n (s + 1) / S) of the batch (core/parallel.hpp's
// for_each_chunk) and runs on its own replica of the model: the same layers, made from
// their configs, with this step's parameters and frozen flags copied in, and
// gradients of their own; shard 0 runs on the model itself. The layers see the items'
// positions in the whole batch (train_context::first_item), so dropout draws the same
// masks however the batch is split: the split changes only the order in which the
// gradient is summed, and the same seed and shard count give bit-identical results.
//
// A model whose layers couple the items of a batch (batch normalization) runs as one
// shard, as do batches too small to be worth splitting; one shard is exactly
// sequential::forward_train and backward, with the layers parallel inside.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/core/rng.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace nnmark {

template <class T>
class data_parallel {
public:
    // Fewer items than this per shard and the shards' products get too thin to pay.
    static constexpr index_t min_items_per_shard = 16;

    // `shards` 0: one per thread (thread_count()), decided at each forward pass.
    explicit data_parallel(sequential<T>& model, int shards = 0) : model_(model), requested_shards_(shards) {
        if (shards < 0) throw argument_error("data_parallel: expected a shard count >= 0, got " + std::to_string(shards));
    }

    // The training forward pass of batch x (sequential::forward_train): the logits of
    // all its items. Advances `random` as sequential::forward_train does.
    const tensor<T>& forward(const tensor<T>& x, rng& random) {
        model_.expect_batch(x);  // here: an exception must not leave a parallel region
        shards_ = shard_count(x.batch());
        make_shards();
        if (shards_ == 1) return model_.forward_train(x, shard_traces_[0].trace, random);
        logits_.resize(model_.output_item().prepend(x.batch()));
        for_each_chunk(x.batch(), shards_, [&](int s, index_t first, index_t last) {
            if (s > 0) update_replica(shard_model(s));
            shard_trace& shard = shard_traces_[static_cast<std::size_t>(s)];
            copy_items(x, first, last, shard.input);
            rng shard_random = random;  // each shard starts where one whole-batch pass would
            const tensor<T>& logits = shard_model(s).forward_train(shard.input, shard.trace, shard_random, first);
            std::copy(logits.data(), logits.data() + logits.size(), logits_.item(first).data());
        });
        random.next_u64();  // as the whole-batch pass does, once
        return logits_;
    }

    // The backward pass from dL/dlogits of the batch of the last forward(). The model's
    // gradients become the batch's: they are overwritten, not added to.
    void backward(const tensor<T>& grad_logits) {
        if (shards_ == 0) throw error("data_parallel::backward: called before forward");
        if (shards_ == 1) {
            model_.zero_gradients();
            model_.backward(shard_traces_[0].trace, grad_logits);
            return;
        }
        expect_shape(grad_logits, logits_.shape(), "data_parallel::backward (gradient of the logits)");
        for_each_chunk(grad_logits.batch(), shards_, [&](int s, index_t first, index_t last) {
            shard_trace& shard = shard_traces_[static_cast<std::size_t>(s)];
            copy_items(grad_logits, first, last, shard.grad_logits);
            sequential<T>& m = shard_model(s);
            m.zero_gradients();
            m.backward(shard.trace, shard.grad_logits);
        });
        sum_replica_gradients();
    }

    // Shards of the last forward pass (0 before the first).
    int shards() const { return shards_; }

private:
    struct shard_trace {
        training_trace<T> trace;
        tensor<T> input, grad_logits;  // the shard's items of the batch and of dL/dlogits
    };

    int shard_count(index_t batch) const {
        if (model_.couples_batch_items()) return 1;
        const int wanted = requested_shards_ > 0 ? requested_shards_ : thread_count();
        return static_cast<int>(std::clamp<index_t>(batch / min_items_per_shard, 1, wanted));
    }

    sequential<T>& shard_model(int s) { return s == 0 ? model_ : replicas_[static_cast<std::size_t>(s - 1)]; }

    // A trace for each shard, and a replica for each shard but the first.
    void make_shards() {
        while (replicas_.size() + 1 < static_cast<std::size_t>(shards_)) replicas_.push_back(same_architecture(model_));
        if (shard_traces_.size() < static_cast<std::size_t>(shards_)) shard_traces_.resize(static_cast<std::size_t>(shards_));
    }

    // The model's current parameters and frozen flags into a replica.
    void update_replica(sequential<T>& replica) const {
        std::ranges::copy(model_.parameters(), replica.parameters().begin());
        for (int i = 0; i < model_.size(); ++i) replica.set_frozen(i, model_.is_frozen(i));
    }

    // Items [first, last) of `from` into `to`.
    static void copy_items(const tensor<T>& from, index_t first, index_t last, tensor<T>& to) {
        shape s = from.shape();
        s[0] = last - first;
        to.resize(s);
        std::copy(from.item(first).data(), from.item(first).data() + to.size(), to.data());
    }

    // model gradients += each replica's, in shard order, in parallel over the buffer.
    void sum_replica_gradients() {
        T* total = model_.gradients().data();
        const auto count = static_cast<index_t>(model_.gradients().size());
        for_each_chunk(count, threads_for(count, 1 << 16), [&](int, index_t first, index_t last) {
            for (int s = 1; s < shards_; ++s) {
                const T* part = shard_model(s).gradients().data();
                for (index_t i = first; i < last; ++i) total[i] += part[i];
            }
        });
    }

    sequential<T>& model_;
    int requested_shards_;
    int shards_ = 0;
    std::vector<sequential<T>> replicas_;
    std::vector<shard_trace> shard_traces_;  // per shard
    tensor<T> logits_;                       // the whole batch's, gathered from the shards
};

}  // namespace nnmark
