// sgd<T>: stochastic gradient descent with momentum, as torch.optim.SGD (dampening 0).
//
// For each trainable parameter w with gradient grad, per element:
//   g = grad + weight_decay * w           (only where the parameter is decayed)
//   v = momentum * v + g                  (momentum > 0; v starts at 0, so the first
//                                          step gives v = g, as PyTorch's buf = g)
//   g = nesterov ? g + momentum * v : v   (momentum > 0)
//   w = w - lr * g
// State: one buffer "momentum" (v) when momentum > 0, none otherwise.
//
// A weight decay of 0 still computes grad + 0 * w: the same number for every finite w,
// and one kernel instead of two.
#pragma once

#include "nnmark/optim/optimizer.hpp"

namespace nnmark {

template <class T>
class sgd final : public optimizer<T> {
public:
    explicit sgd(double lr, double momentum = 0.0, bool nesterov = false, double weight_decay = 0.0)
        : momentum_(momentum), nesterov_(nesterov), weight_decay_(weight_decay) {
        this->set_learning_rate(lr);
        detail::require_in_range(name(), "momentum", momentum, 0);
        detail::require_in_range(name(), "weight decay", weight_decay, 0);
        if (nesterov && momentum == 0.0) throw argument_error(name() + ": Nesterov momentum requires momentum > 0");
    }

    std::string name() const override { return "sgd"; }
    double momentum() const { return momentum_; }
    bool nesterov() const { return nesterov_; }
    double weight_decay() const { return weight_decay_; }

private:
    using typename optimizer<T>::parameter_view;

    std::vector<std::string> state_names() const override {
        if (momentum_ > 0.0) return {"momentum"};
        return {};
    }

    void update(const parameter_view& p) override {
        const T lr = static_cast<T>(this->learning_rate());
        const T decay = p.decayed ? static_cast<T>(weight_decay_) : T(0);
        T* const w = p.value.data();
        const T* const grad = p.grad.data();
        if (momentum_ == 0.0) {
            this->for_each_element(
                p.value.size(), [=](auto& wi, const auto& gi) { wi -= lr * (gi + decay * wi); }, w, grad);
            return;
        }
        const T mu = static_cast<T>(momentum_);
        const bool nesterov = nesterov_;
        auto momentum_step = [=](auto& wi, const auto& gi, auto& vi) {
            const auto g = gi + decay * wi;
            vi = mu * vi + g;
            wi -= lr * (nesterov ? g + mu * vi : vi);
        };
        this->for_each_element(p.value.size(), momentum_step, w, grad, this->state_of(0, p));
    }

    double momentum_;
    bool nesterov_;
    double weight_decay_;
};

}  // namespace nnmark
