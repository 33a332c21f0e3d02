// dawn_answers: which answers of a prediction API DAWN alters, and to what.
//
// DAWN (Szyller, Atli, Marchal, Asokan, "DAWN: Dynamic Adversarial Watermarking of
// Neural Networks", ACM MM 2021) watermarks the answers of a served model instead of
// the model: a thief who trains a surrogate on the API's answers (model extraction)
// removes trigger-set watermarks, but learns whatever the API answered. So a small
// keyed fraction r of queries gets a keyed wrong label, and the server records them
// (serve/dawn_registry.hpp); a surrogate answers the recorded images with the recorded
// labels far more often than chance (serve/dawn_statistics.hpp), an independent model
// does not.
//
// The decision, as the paper's Section 4 asks of it, is a keyed function of the query:
// the same input from the same client always gets the same answer (a client who asks
// twice learns nothing from a difference), and without the secret no one can tell which
// inputs are altered or to what. It is HMAC-SHA256 keyed with the registry's 32-byte
// secret over
//     u64 LE length of the client id, the client id, u64 LE count of values,
//     each value of the image as the model sees it (float32 bits, u32 LE)
// so the decision follows the decoded tensor, not the JSON text: "84" and a PNG of the
// same pixel, or HWC and CHW layouts, give one decision. Of the 32 bytes of the digest,
// bytes 0-7 (u64 LE, as a fraction of 2^64) decide whether to alter (fraction r) and
// bytes 8-15 choose the label uniformly among the K - 1 classes other than the model's
// own answer (reducing a 64-bit number modulo K - 1 biases it by less than
// (K - 1) / 2^64). The digest also names the (client, input) pair in the registry, so a
// repeated query is recorded once.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/sha256.hpp"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <array>
#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace nnmark {

using dawn_secret = std::array<unsigned char, 32>;
using dawn_digest = std::array<unsigned char, 32>;

struct dawn_decision {
    dawn_digest digest{};  // HMAC of (client, input): names the pair in the registry
    bool altered = false;
    int label = 0;  // the answer to give: the model's own unless altered
};

namespace detail::dawn {

inline void append_u64(std::string& out, std::uint64_t value) {
    for (int byte = 0; byte < 8; ++byte) out += static_cast<char>((value >> (8 * byte)) & 0xff);
}

inline std::uint64_t read_u64(std::span<const unsigned char> bytes) {
    std::uint64_t value = 0;
    for (int byte = 7; byte >= 0; --byte) value = (value << 8) | bytes[static_cast<std::size_t>(byte)];
    return value;
}

inline dawn_digest hmac(const dawn_secret& secret, std::string_view message) {
    dawn_digest digest{};
    unsigned int length = 0;
    if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(), &length) ||
        length != digest.size())
        throw error("dawn: OpenSSL HMAC-SHA256 failed");
    return digest;
}

// The HMAC's message for (client, image): length-prefixed, so no two pairs share one.
inline std::string decision_message(std::string_view client, std::span<const float> image) {
    std::string message;
    message.reserve(16 + client.size() + 4 * image.size());
    append_u64(message, client.size());
    message += client;
    append_u64(message, image.size());
    for (float value : image) {
        const auto bits = std::bit_cast<std::uint32_t>(value);
        for (int byte = 0; byte < 4; ++byte) message += static_cast<char>((bits >> (8 * byte)) & 0xff);
    }
    return message;
}

}  // namespace detail::dawn

// The label an altered answer gives, from bytes 8-15 of its digest: one of the
// `classes` - 1 classes other than `own_label`, uniformly. It does not depend on the
// rate, so a verifier can check a record's label from the secret alone.
inline int dawn_altered_label(const dawn_digest& digest, int own_label, int classes) {
    const auto others = static_cast<std::uint64_t>(classes - 1);
    const int choice = static_cast<int>(detail::dawn::read_u64(std::span(digest).subspan(8, 8)) % others);
    return choice < own_label ? choice : choice + 1;
}

// The digest of (client, image): names the pair, and decides its answer.
inline dawn_digest dawn_decision_digest(const dawn_secret& secret, std::string_view client,
                                        std::span<const float> image) {
    return detail::dawn::hmac(secret, detail::dawn::decision_message(client, image));
}

// What the server publishes at start: SHA-256 of the HMAC of a fixed label. It names
// the secret (a registry shown later must have this commitment) without revealing it,
// since HMAC-SHA256 is a pseudorandom function of its key.
inline std::string dawn_commitment(const dawn_secret& secret) {
    const dawn_digest tag = detail::dawn::hmac(secret, "nnmark dawn commitment v1");
    return sha256_hex(std::span<const unsigned char>(tag));
}

class dawn_answers {
public:
    // `rate`: the fraction r of (client, input) pairs answered wrongly, in (0, 0.5]; the
    // paper uses 0.5% to 5%, few enough to cost the API's users little accuracy.
    dawn_answers(const dawn_secret& secret, double rate) : secret_(secret), rate_(rate) {
        if (!(rate > 0.0 && rate <= 0.5))
            throw argument_error("dawn: expected a rate of altered answers in (0, 0.5], found " + std::to_string(rate));
    }
    ~dawn_answers() { OPENSSL_cleanse(secret_.data(), secret_.size()); }
    dawn_answers(const dawn_answers&) = delete;
    dawn_answers& operator=(const dawn_answers&) = delete;

    // The answer to `image` from `client`, whose model answered `own_label` of `classes`.
    dawn_decision decide(std::string_view client, std::span<const float> image, int own_label, int classes) const {
        if (classes < 2 || own_label < 0 || own_label >= classes)
            throw argument_error("dawn: expected a label in 0.." + std::to_string(classes - 1) +
                                 " of at least 2 classes, found " + std::to_string(own_label) + " of " +
                                 std::to_string(classes));
        dawn_decision decision;
        decision.digest = dawn_decision_digest(secret_, client, image);
        const std::span<const unsigned char> digest(decision.digest);
        const double draw = static_cast<double>(detail::dawn::read_u64(digest.first(8)) >> 11) * 0x1p-53;
        decision.altered = draw < rate_;
        decision.label = own_label;
        if (decision.altered) decision.label = dawn_altered_label(decision.digest, own_label, classes);
        return decision;
    }

    std::string commitment() const { return dawn_commitment(secret_); }

private:
    dawn_secret secret_;
    double rate_;
};

// Scores (one row of K) consistent with an altered answer: the model's own top score
// and the chosen label's trade places, so the argmax of the scores is the label given
// and the row is still the model's set of probabilities.
inline void swap_scores(std::span<float> scores, int own_label, int label) {
    std::swap(scores[static_cast<std::size_t>(own_label)], scores[static_cast<std::size_t>(label)]);
}

}  // namespace nnmark

