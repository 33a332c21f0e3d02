// remote_verification: the key verified through a prediction_client answers as the model
// file does; the ledger is written before the first request; a second verification sends
// none of the first's triggers; a client answering in the wrong layout is named.
#include "nnmark/attacks/attacker_data.hpp"
#include "nnmark/serve/prediction_client.hpp"
#include "nnmark/serve/prediction_service.hpp"
#include "nnmark/serve/remote_verification.hpp"

#include "../support/files.hpp"
#include "../support/tiny_watermark.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <stdexcept>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// A prediction service called in-process, recording what it was sent; `before_each`
// runs before each request is answered.
class in_process_client final : public prediction_client {
public:
    explicit in_process_client(const sequential<float>& model) : service_(model, "tiny", {1 << 10}) {}

    std::string predict(const std::string& body, index_t images) override {
        if (before_each) before_each();
        ++sent_.requests;
        sent_.images_sent += images;
        const service_reply reply = service_.predict(body, buffers_);
        if (reply.status != 200) throw error("in-process service answered " + std::to_string(reply.status));
        return answer_override.empty() ? reply.body : answer_override;
    }
    client_traffic sent() const override { return sent_; }
    const std::string& address() const override { return address_; }

    std::function<void()> before_each;
    std::string answer_override;  // when set, every answer is this body

private:
    prediction_service service_;
    service_buffers buffers_;
    client_traffic sent_;
    std::string address_ = "in-process";
};

}  // namespace

TEST_CASE("remote verification: the service's answers verify as the model file's, every query counted") {
    quadrant_watermark w(5);
    const watermark_key& key = w.embedded.setup.key;
    in_process_client client(w.model);
    service_query query;
    query.batch = 7;  // 20 triggers + 30 decoys: 8 requests, the last of 1 image

    rng picking(3);
    const dataset decoys = pick_decoys(w.test, 30, picking);
    rng order(4);
    const remote_verification remote = verify_service(client, query, key, decoys, order, 1e-3);
    const verification_result direct = verify_model(w.model, key, decoys, 1e-3);

    CHECK(remote.result.queries == key.triggers.size());
    CHECK(remote.result.matches == direct.matches);
    CHECK(remote.result.log10_p_value == doctest::Approx(direct.log10_p_value));
    CHECK(remote.result.watermark_present == direct.watermark_present);
    CHECK(remote.result.matches >= 18);
    CHECK(remote.asking.address == "in-process");
    CHECK(remote.asking.decoys == 30);
    CHECK(remote.asking.decoy_accuracy == doctest::Approx(evaluate(w.model, decoys).accuracy()));
    CHECK(remote.asking.traffic.requests == 8);
    CHECK(remote.asking.traffic.images_sent == 50);
    CHECK_FALSE(remote.spending);
}

TEST_CASE("remote verification: unspent triggers are recorded before they leave, and never sent twice") {
    quadrant_watermark w(6);
    const watermark_key& key = w.embedded.setup.key;
    const temp_dir dir;
    const std::filesystem::path ledger = dir / "key.ledger";
    in_process_client client(w.model);
    const service_query query;
    // Fresh triggers come from the recipe's pool: the training images of the source class.
    const fresh_trigger_pool pool = [&](const trigger_recipe& r) { return w.train.filter_by_label(r.source); };

    bool ledger_written_first = true;
    client.before_each = [&] { ledger_written_first &= std::filesystem::file_size(ledger) > 0; };
    rng picking(7);
    const dataset decoys = pick_decoys(w.test, 30, picking);
    rng order(8);
    const remote_verification first =
        verify_service_unspent(client, query, key, ledger, {10, false}, pool, decoys, order, 1e-3);
    CHECK(ledger_written_first);
    REQUIRE(first.spending);
    CHECK(first.spending->triggers_spent_before == 0);
    CHECK(first.spending->fresh_triggers == 0);  // the key's own 10 first
    CHECK(first.result.queries == 10);

    const remote_verification second =
        verify_service_unspent(client, query, key, ledger, {15, false}, pool, decoys, order, 1e-3);
    CHECK(second.spending->triggers_spent_before == 10);
    CHECK(second.spending->fresh_triggers == 5);  // the key's other 10, then 5 made by the recipe
    CHECK(second.result.queries == 15);

    // The ledger names 25 distinct images: none of the first verification's went out again.
    const ledger_contents contents = read_trigger_ledger(ledger, key.commitment());
    std::set<std::string> sent;
    for (const ledger_entry& e : contents.entries) sent.insert(e.sha256.begin(), e.sha256.end());
    CHECK(contents.entries.size() == 2);
    CHECK(sent.size() == 25);

    // Asking for more than remain is refused before anything is sent.
    const long long requests = client.sent().requests;
    CHECK_THROWS_AS(verify_service_unspent(client, query, key, ledger, {1 << 20, false}, pool, decoys, order, 1e-3),
                    argument_error);
    CHECK(client.sent().requests == requests);
}

TEST_CASE("remote verification: an answer in another layout is refused, naming the command and the service") {
    quadrant_watermark w(5);
    in_process_client client(w.model);
    client.answer_override = R"({"outputs": [[0.1, 0.9]]})";
    rng random(1);
    const dataset decoys = pick_decoys(w.test, 20, random);
    service_query query;
    query.command = "calibrate --urls";
    try {
        verify_service(client, query, w.embedded.setup.key, decoys, random, 1e-3);
        FAIL("expected a format_error");
    } catch (const format_error& e) {
        const std::string message = e.what();
        CHECK(message.find("calibrate --urls: the answer of in-process") == 0);
    }
    query.batch = 0;
    CHECK_THROWS_AS(verify_service(client, query, w.embedded.setup.key, decoys, random, 1e-3), argument_error);
}

TEST_CASE("remote verification: images asked in order come back in order, with their scores") {
    quadrant_watermark w(5);
    in_process_client client(w.model);
    service_query query;
    query.batch = 4;
    query.signature = "scores";      // nnmark serve answers scores too,
    query.reply = {"scores", true};  // and the label is their argmax
    progress_line quiet(stderr, 5.0, true);
    const dataset images = w.test.subset(std::vector<index_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    const service_replies replies = ask_in_order(client, query, strip_labels(images), 4, quiet);
    CHECK(replies.requests == 3);
    CHECK(replies.labels == predict_labels(w.model, images));
    CHECK(replies.scores.size() == 40);
}

TEST_CASE("ask_hidden: queries come back in their own order, hidden in mixed requests, the traffic counted") {
    quadrant_watermark w(5);
    in_process_client client(w.model);
    service_query query;
    query.batch = 9;
    rng random(2);
    const dataset decoys = pick_decoys(w.test, 25, random);
    bool ran_before_first = false;
    client.before_each = [&] { CHECK(ran_before_first); };
    const hidden_answers a = ask_hidden(client, query, w.embedded.setup.key.triggers, decoys, random,
                                        [&] { ran_before_first = true; });
    CHECK(a.queries == predict_labels(w.model, w.embedded.setup.key.triggers));
    CHECK(a.decoys == predict_labels(w.model, decoys));
    CHECK(a.decoy_labels == decoys.labels);
    CHECK(a.asking.traffic.requests == 5);  // 45 images, 9 at a time
    CHECK(a.asking.traffic.images_sent == 45);
    CHECK_FALSE(a.non_finite_outputs);  // labels only: no scores were read
}
