// optimizer<T>: what every optimizer does to a model, and the walk over its parameters
// they all share.
//
// step(model) moves each parameter against its gradient (the gradients the last
// backward pass added; the trainer zeroes them in between). It updates only the
// trainable parameters (not batch-norm running statistics) of layers that are not
// frozen, and a subclass applies weight decay only where spec.decayed says so (weights
// yes, biases and batch-norm scales no): PyTorch's usual two parameter groups.
//
// Per-parameter state (momentum, Adam's moments) lives in flat buffers laid out like the
// model's parameter buffer, so element i of every state buffer belongs to parameter
// element i. The buffers are allocated, zeroed, on the first step; a later step on a
// model with another parameter count is a shape_error, because the state would no
// longer belong to the parameters it is applied to.
//
// state() and step_count() are everything an optimizer remembers besides its
// hyper-parameters, so a checkpoint can store them and training resumes bit-identically:
//   opt.allocate_state(model.parameters().size());
//   for (auto& [name, buffer] : opt.state()) read the saved buffer `name` into `buffer`;
//   opt.set_step_count(saved_steps);
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/core/tensor.hpp"
#include "nnmark/model/sequential.hpp"
#include "nnmark/optim/schedule.hpp"  // detail::require_in_range

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

namespace nnmark {

template <class T>
class optimizer {
public:
    using state_buffer = std::pair<std::string, std::span<T>>;

    virtual ~optimizer() = default;

    // "sgd", "adam": the name used in logs and checkpoints.
    virtual std::string name() const = 0;

    // One update of every trainable parameter of the unfrozen layers of `model`.
    void step(sequential<T>& model) {
        allocate_state(model.parameters().size());
        ++steps_;
        const T* const first = model.parameters().data();
        for (const auto& p : model.named_parameters()) {
            if (p.frozen || !p.spec.trainable) continue;
            update({p.value, p.grad, static_cast<std::size_t>(p.value.data() - first), p.spec.decayed});
        }
    }

    void set_learning_rate(double lr) {
        detail::require_in_range(name(), "learning rate", lr, 0);
        lr_ = lr;
    }
    double learning_rate() const { return lr_; }

    // Steps taken so far (Adam's bias correction depends on it).
    std::int64_t step_count() const { return steps_; }
    void set_step_count(std::int64_t steps) {
        if (steps < 0) throw argument_error(name() + ": step count must be >= 0, got " + std::to_string(steps));
        steps_ = steps;
    }

    // Zeroed state buffers for a model of `parameter_count` parameters, unless they
    // exist already; a different count than before is a shape_error.
    void allocate_state(std::size_t parameter_count) {
        if (state_size_) {
            if (*state_size_ != parameter_count)
                throw shape_error(name() + ": optimizer state was made for " + std::to_string(*state_size_) +
                                  " parameters, the model now has " + std::to_string(parameter_count) +
                                  "; use a new optimizer for a changed model");
            return;
        }
        buffers_.assign(state_names().size(), aligned_vector<T>(parameter_count, T(0)));
        state_size_ = parameter_count;
    }

    // The state buffers by name ("momentum", "adam.m", ...); empty before they are allocated.
    std::vector<state_buffer> state() {
        const std::vector<std::string> names = state_names();
        std::vector<state_buffer> out;
        for (std::size_t i = 0; i < buffers_.size(); ++i) out.emplace_back(names[i], std::span<T>(buffers_[i]));
        return out;
    }

protected:
    optimizer() = default;

    // One parameter tensor to update, and where its state is.
    struct parameter_view {
        std::span<T> value;
        std::span<const T> grad;
        std::size_t offset;  // of value[0] in the model's parameter buffer, so in every state buffer
        bool decayed;        // weight decay applies
    };

    // State buffer `index` (in state_names() order) from the first element of `p`.
    T* state_of(std::size_t index, const parameter_view& p) { return buffers_[index].data() + p.offset; }

    // Calls kernel(x...) on every element of the n-element arrays, x being references to
    // the elements of each array in turn (changes are written back to non-const arrays).
    // kernel is a generic lambda, called with xsimd::batch<T> values over the body and
    // with T for the last n % lanes elements: the update is written once and vectorized
    // however the compiler treats sqrt (GCC will not vectorize std::sqrt, which may set
    // errno). Large arrays are split over threads at batch boundaries; every element is
    // computed alone, so the result does not depend on the thread count.
    template <class Kernel, class... Arrays>
    static void for_each_element(std::size_t n, Kernel kernel, Arrays*... arrays) {
        using batch = xsimd::batch<T>;
        constexpr std::size_t lanes = batch::size;
        const auto blocks = static_cast<index_t>(n / lanes);
        [[maybe_unused]] const int threads = threads_for(static_cast<long long>(n), 1 << 16);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (index_t b = 0; b < blocks; ++b) apply_kernel<batch>(static_cast<std::size_t>(b) * lanes, kernel, arrays...);
        for (std::size_t i = static_cast<std::size_t>(blocks) * lanes; i < n; ++i) apply_kernel<T>(i, kernel, arrays...);
    }

private:
    // Names of the state buffers; fixed for the life of the optimizer.
    virtual std::vector<std::string> state_names() const = 0;
    // Update one parameter tensor; step_count() is already the number of this step.
    virtual void update(const parameter_view& p) = 0;

    // kernel on element(s) i of every array, as V (T or a batch of T).
    template <class V, class Kernel, class... Arrays>
    static void apply_kernel(std::size_t i, Kernel& kernel, Arrays*... arrays) {
        auto values = std::make_tuple(load<V>(arrays + i)...);
        std::apply(kernel, values);
        std::apply([&](const auto&... value) { (store(arrays + i, value), ...); }, values);
    }

    template <class V, class U>
    static V load(const U* p) {
        if constexpr (std::is_same_v<V, T>) return *p;
        else return V::load_unaligned(p);
    }

    template <class U, class V>
    static void store(U* p, const V& value) {
        if constexpr (std::is_const_v<U>) return;  // an input, such as the gradient
        else if constexpr (std::is_same_v<V, T>) *p = value;
        else value.store_unaligned(p);
    }

    double lr_ = 0.0;
    std::int64_t steps_ = 0;
    std::optional<std::size_t> state_size_;
    std::vector<aligned_vector<T>> buffers_;
};

}  // namespace nnmark
