// remote_verification: the black-box verification of Zhang et al. (2018, section 4.3)
// against a model reachable only as a prediction API (serve/prediction_client.hpp).
//
// The key's triggers go out shuffled among decoys from the test set (serve/query_plan.hpp)
// and the answers are verified exactly as a model file's are (watermark/verify.hpp).
// Two ways to choose the triggers:
// - verify_service sends all of the key's, whatever was sent before: what calibration
//   asks reference models, which are not suspects watching for a key;
// - verify_service_unspent sends only triggers no earlier verification with the key sent
//   (watermark/trigger_ledger.hpp, watermark/unspent_triggers.hpp): a thief who logged a
//   verification's queries can filter exactly those images from then on, so a trigger is
//   spent the moment it may be seen. The ledger entry is written (and synced) before the
//   first request leaves, not after the answers: a verification cut short by a crash or a
//   refused request has still spent what it sent.
#pragma once

#include "nnmark/serve/prediction_client.hpp"
#include "nnmark/watermark/key.hpp"
#include "nnmark/watermark/trigger_ledger.hpp"
#include "nnmark/watermark/unspent_triggers.hpp"
#include "nnmark/watermark/verify.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace nnmark {

// What the trigger ledger says of a verify_service_unspent.
struct ledger_spending {
    std::filesystem::path ledger;
    index_t fresh_triggers = 0;         // of those sent, made by the key's recipe (not in the key)
    index_t triggers_spent_before = 0;  // trigger images earlier verifications sent
};

struct remote_verification {
    verification_result result;
    remote_asking asking;
    std::optional<ledger_spending> spending;  // verify_service_unspent only
};

// Which triggers verify_service_unspent sends.
struct trigger_budget {
    index_t triggers = 0;  // 0: as many as the key has
    bool reuse = false;    // the key's first triggers, spent or not (a thief may filter them)
};

namespace detail {

inline suspect_answers suspect_answers_of(hidden_answers& a) {
    return {std::move(a.queries), std::move(a.decoys), std::move(a.decoy_labels), a.non_finite_outputs};
}

}  // namespace detail

// `key` verified at level `alpha` by the service behind `client`, asked every trigger of
// the key shuffled by `random` among `decoys` (at least as many as triggers).
inline remote_verification verify_service(prediction_client& client, const service_query& query,
                                          const watermark_key& key, const dataset& decoys, rng& random, double alpha) {
    hidden_answers asked = ask_hidden(client, query, key.triggers, decoys, random);
    return {verify_answers(key, detail::suspect_answers_of(asked), alpha), asked.asking, std::nullopt};
}

// The pool fresh triggers of a recipe are made from (unspent_triggers.hpp): the training
// images of the recipe's source class, loaded only when the key's own run out.
using fresh_trigger_pool = std::function<dataset(const trigger_recipe&)>;

// `key` verified by the service behind `client` with `budget.triggers` triggers no earlier
// verification recorded in the ledger at `ledger_path` sent (the key's own first, then
// fresh ones of its recipe from `fresh_pool`), hidden among `decoys`. Throws
// argument_error, before anything is sent, when too few unspent triggers remain.
inline remote_verification verify_service_unspent(prediction_client& client, const service_query& query,
                                                  const watermark_key& key, const std::filesystem::path& ledger_path,
                                                  const trigger_budget& budget, const fresh_trigger_pool& fresh_pool,
                                                  const dataset& decoys, rng& random, double alpha) {
    const index_t count = budget.triggers ? budget.triggers : key.triggers.size();
    const std::string commitment = key.commitment();
    trigger_ledger ledger(ledger_path, commitment);
    const index_t spent_before = static_cast<index_t>(ledger.spent().size());
    const trigger_selection chosen = [&] {
        try {
            return budget.reuse ? first_key_triggers(key, count)
                                : choose_unspent_triggers(key, ledger.spent(), count, fresh_pool);
        } catch (const argument_error& e) {
            throw argument_error(query.command + ", ledger " + ledger.path().filename().string() + ": " + e.what());
        }
    }();
    const watermark_key sent = key_with_triggers(key, chosen);
    hidden_answers asked = ask_hidden(client, query, sent.triggers, decoys, random, [&] {
        ledger.append({commitment, ledger_time_now(), client.address(), chosen.fresh, chosen.sha256});
    });
    return {verify_answers(sent, detail::suspect_answers_of(asked), alpha), asked.asking,
            ledger_spending{ledger.path(), chosen.fresh, spent_before}};
}

}  // namespace nnmark
