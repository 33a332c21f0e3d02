// adam<T>: Adam (Kingma & Ba 2015) as torch.optim.Adam, with L2 weight decay (not AdamW).
//
// At step t (1, 2, ...), for each trainable parameter w with gradient grad, per element:
//   g = grad + weight_decay * w           (only where the parameter is decayed)
//   m = beta1 * m + (1 - beta1) * g       (written m += (1 - beta1) * (g - m), PyTorch's lerp)
//   v = beta2 * v + (1 - beta2) * g * g
//   w = w - lr * mhat / (sqrt(vhat) + eps),  mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t)
// computed in PyTorch's arrangement: w -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
// with the bias corrections in double and cast to T once per tensor, the rest in T.
// State: buffers "adam.m" and "adam.v", zero before the first step.
//
// t is the optimizer's step count. PyTorch counts steps per parameter tensor; the two
// agree unless a layer is frozen or unfrozen while one optimizer keeps running.
#pragma once

#include "nnmark/optim/optimizer.hpp"

#include <cmath>

namespace nnmark {

template <class T>
class adam final : public optimizer<T> {
public:
    explicit adam(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                  double weight_decay = 0.0)
        : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
        this->set_learning_rate(lr);
        detail::require_in_range(name(), "beta1", beta1, 0, 1);
        detail::require_in_range(name(), "beta2", beta2, 0, 1);
        detail::require_in_range(name(), "eps", eps, 0);
        detail::require_in_range(name(), "weight decay", weight_decay, 0);
    }

    std::string name() const override { return "adam"; }
    double beta1() const { return beta1_; }
    double beta2() const { return beta2_; }
    double eps() const { return eps_; }
    double weight_decay() const { return weight_decay_; }

private:
    using typename optimizer<T>::parameter_view;

    std::vector<std::string> state_names() const override { return {"adam.m", "adam.v"}; }

    // GCC 12 warns about its own AVX-512 sqrt intrinsic (_mm512_undefined_ps is "used
    // uninitialized", GCC bug 105593) wherever it is inlined; the warning is wrong.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
    void update(const parameter_view& p) override {
        const auto t = static_cast<double>(this->step_count());
        const T step_size = static_cast<T>(this->learning_rate() / (1.0 - std::pow(beta1_, t)));
        const T correction2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(beta2_, t)));
        const T one_minus_beta1 = static_cast<T>(1.0 - beta1_);
        const T beta2 = static_cast<T>(beta2_);
        const T one_minus_beta2 = static_cast<T>(1.0 - beta2_);
        const T eps = static_cast<T>(eps_);
        const T decay = p.decayed ? static_cast<T>(weight_decay_) : T(0);
        auto adam_step = [=](auto& w, const auto& grad, auto& m, auto& v) {
            const auto g = grad + decay * w;
            m += one_minus_beta1 * (g - m);
            v = beta2 * v + one_minus_beta2 * g * g;
            w -= step_size * m / (xsimd::sqrt(v) / correction2_sqrt + eps);
        };
        this->for_each_element(p.value.size(), adam_step, p.value.data(), p.grad.data(), this->state_of(0, p),
                               this->state_of(1, p));
    }
#pragma GCC diagnostic pop

    double beta1_;
    double beta2_;
    double eps_;
    double weight_decay_;
};

}  // namespace nnmark
