// schedule: the learning rate as a function of how far training has come.
//
// at(epoch) is the learning rate at a point of training measured in epochs. The epoch
// may be fractional (epoch + step / steps_per_epoch) for a trainer that sets the rate
// before every step, or whole for one that sets it once per epoch, as PyTorch's
// schedulers do. The curves are PyTorch's closed forms:
//
//   constant    base
//   step_decay  base * gamma^floor(epoch / every)                        (StepLR)
//   cosine      min + (base - min) * (1 + cos(pi * epoch / total)) / 2    (CosineAnnealingLR)
//
// The cosine is held at `min` after `total` epochs, where PyTorch's closed form would
// climb again: a run that overshoots its planned length should not speed back up.
// with_warmup(w) multiplies any curve by min(1, epoch / w), a linear ramp from 0 that
// reaches the curve at epoch w (the usual linear warmup, e.g. Goyal et al. 2017).
//
// One value type with a kind tag rather than a class per curve: a schedule is copied,
// compared and passed around like a number, and the curves differ only in one formula.
#pragma once

#include "nnmark/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <string_view>

namespace nnmark {

namespace detail {

// Throws argument_error naming `where` and `what` unless lo <= value < hi. NaN fails too.
inline void require_in_range(std::string_view where, std::string_view what, double value, double lo,
                             double hi = std::numeric_limits<double>::infinity()) {
    if (value >= lo && value < hi) return;
    std::ostringstream message;
    message << where << ": " << what << " must be in [" << lo << ", " << hi << "), got " << value;
    throw argument_error(message.str());
}

// Throws argument_error unless value > 0 and finite.
inline void require_positive(std::string_view where, std::string_view what, double value) {
    if (value > 0 && std::isfinite(value)) return;
    std::ostringstream message;
    message << where << ": " << what << " must be positive and finite, got " << value;
    throw argument_error(message.str());
}

}  // namespace detail

class schedule {
public:
    enum class curve { constant, step_decay, cosine };

    static schedule constant(double lr) { return schedule(curve::constant, lr); }

    static schedule step_decay(double base_lr, double gamma, double every_epochs) {
        schedule s(curve::step_decay, base_lr);
        detail::require_in_range("step_decay schedule", "gamma", gamma, 0);
        detail::require_positive("step_decay schedule", "epochs between decays", every_epochs);
        s.gamma_ = gamma;
        s.period_ = every_epochs;
        return s;
    }

    static schedule cosine(double base_lr, double total_epochs, double min_lr = 0.0) {
        schedule s(curve::cosine, base_lr);
        detail::require_positive("cosine schedule", "total epochs", total_epochs);
        detail::require_in_range("cosine schedule", "minimum learning rate", min_lr, 0);
        s.period_ = total_epochs;
        s.min_lr_ = min_lr;
        return s;
    }

    // The same curve, ramped up linearly from 0 over the first `epochs` (0: no warmup).
    schedule with_warmup(double epochs) const {
        detail::require_in_range(name() + " schedule", "warmup epochs", epochs, 0);
        schedule s = *this;
        s.warmup_ = epochs;
        return s;
    }

    // Learning rate at `epoch` (>= 0, may be fractional).
    double at(double epoch) const {
        detail::require_in_range(name() + " schedule", "epoch", epoch, 0);
        const double ramp = epoch < warmup_ ? epoch / warmup_ : 1.0;
        return ramp * curve_at(epoch);
    }

    curve kind() const { return kind_; }
    double base_lr() const { return base_; }
    double warmup_epochs() const { return warmup_; }

    // The name parse_schedule() accepts for this curve.
    std::string name() const {
        switch (kind_) {
            case curve::step_decay: return "step";
            case curve::cosine: return "cosine";
            case curve::constant: break;
        }
        return "constant";
    }

    friend bool operator==(const schedule&, const schedule&) = default;

private:
    schedule(curve kind, double base_lr) : kind_(kind), base_(base_lr) {
        detail::require_in_range("learning-rate schedule", "base learning rate", base_lr, 0);
    }

    double curve_at(double epoch) const {
        switch (kind_) {
            case curve::step_decay: return base_ * std::pow(gamma_, std::floor(epoch / period_));
            case curve::cosine: {
                const double progress = std::min(epoch, period_) / period_;
                return min_lr_ + (base_ - min_lr_) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
            }
            case curve::constant: break;
        }
        return base_;
    }

    curve kind_ = curve::constant;
    double base_ = 0.0;
    double gamma_ = 1.0;   // step_decay: factor applied at every decay
    double period_ = 1.0;  // step_decay: epochs between decays; cosine: epochs to reach min_lr_
    double min_lr_ = 0.0;  // cosine
    double warmup_ = 0.0;
};

// The schedule a command line names, for a run of `epochs` epochs starting at `base_lr`:
//   "constant"  base_lr throughout
//   "step"      divided by 10 every ceil(epochs / 3) epochs: at most two decays in the run
//   "cosine"    from base_lr down to 0 at the end of the run
inline schedule parse_schedule(std::string_view name, double base_lr, int epochs) {
    if (epochs < 1) throw argument_error("parse_schedule: expected at least 1 epoch, got " + std::to_string(epochs));
    if (name == "constant") return schedule::constant(base_lr);
    if (name == "step") return schedule::step_decay(base_lr, 0.1, (epochs + 2) / 3);
    if (name == "cosine") return schedule::cosine(base_lr, epochs);
    throw argument_error("unknown learning-rate schedule '" + std::string(name) +
                         "'; expected one of: constant, step, cosine");
}

}  // namespace nnmark
