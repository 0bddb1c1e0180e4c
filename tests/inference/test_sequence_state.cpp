// SPDX-License-Identifier: GPL-3.0-or-later
// Sequence state on the CPU engine: split prefill equals whole prefill, decode continues prefill
// exactly, forks are independent, state round-trips through bytes, cancellation and bad input
// leave a usable sequence.
#include <QtTest>

#include <atomic>
#include <cstring>
#include <random>

#include "inference/backend.h"
#include "inference/engine.h"

using namespace folio;
using namespace folio::inference;

namespace {

std::filesystem::path goldenSet(const char* name) {
    return std::filesystem::path(FOLIO_GOLDEN_DIR) / name;
}

std::vector<int32_t> randomTokens(int64_t count, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> ids(static_cast<size_t>(count));
    for (auto& id : ids)
        id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    return ids;
}

bool bitwiseEqual(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

double maxRelative(std::span<const float> a, std::span<const float> b) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        norm += double(b[i]) * b[i];
    }
    return std::sqrt(diff / norm);
}

std::unique_ptr<Engine> openEngine(const char* set, EngineOptions options = {}) {
    auto engine = Engine::open(goldenSet(set), options);
    if (!engine) {
        qWarning("%s", engine.error().message.c_str());
        return nullptr;
    }
    return std::move(engine).value();
}

}  // namespace

class SequenceStateTest : public QObject {
    Q_OBJECT

    std::unique_ptr<Engine> engine_;
    std::vector<int32_t> prompt_;
    Logits whole_;

    Logits prefillAll(Engine& engine, Sequence& seq, std::span<const int32_t> tokens) {
        PrefillOptions o;
        o.logits = LogitsWanted::All;
        auto logits = engine.prefill(seq, tokens, o);
        if (!logits)
            qFatal("prefill failed: %s", logits.error().message.c_str());
        return std::move(logits).value();
    }

  private slots:
    void initTestCase() {
        EngineOptions options;
        options.kdaAlgorithm = KdaAlgorithm::Recurrent;
        engine_ = openEngine("tiny", options);
        QVERIFY(engine_);
        prompt_ = randomTokens(130, engine_->config().vocabSize, 42);
        auto seq = engine_->newSequence();
        QVERIFY(seq.ok());
        whole_ = prefillAll(*engine_, *seq, prompt_);
        QCOMPARE(whole_.rows(), int64_t(prompt_.size()));
    }

    void splitPrefillEqualsWholeBitForBit() {
        // Every split point of one cut, and several multi-way splits.
        std::vector<std::vector<size_t>> splits;
        for (size_t cut = 1; cut < prompt_.size(); cut += 3)
            splits.push_back({cut});
        splits.push_back({1, 2, 3, 64, 65, 129});
        splits.push_back({17, 40, 41, 100});
        for (const auto& cuts : splits) {
            auto seq = engine_->newSequence();
            QVERIFY(seq.ok());
            Logits joined;
            joined.vocab = whole_.vocab;
            size_t begin = 0;
            for (size_t i = 0; i <= cuts.size(); ++i) {
                const size_t end = i < cuts.size() ? cuts[i] : prompt_.size();
                Logits part =
                    prefillAll(*engine_, *seq, std::span(prompt_).subspan(begin, end - begin));
                joined.values.insert(joined.values.end(), part.values.begin(), part.values.end());
                begin = end;
            }
            QVERIFY2(bitwiseEqual(joined.values, whole_.values),
                     qPrintable(QString("split at %1 differs").arg(cuts.front())));
            QCOMPARE(seq->length(), int64_t(prompt_.size()));
        }
    }

    void chunkSizeDoesNotChangeResults() {
        for (int64_t chunk : {1, 7, 64, 1000}) {
            EngineOptions options;
            options.kdaAlgorithm = KdaAlgorithm::Recurrent;
            options.prefillChunkTokens = chunk;
            auto engine = openEngine("tiny", options);
            QVERIFY(engine);
            auto seq = engine->newSequence();
            QVERIFY(seq.ok());
            Logits logits = prefillAll(*engine, *seq, prompt_);
            QVERIFY2(bitwiseEqual(logits.values, whole_.values),
                     qPrintable(QString::number(chunk)));
        }
    }

    // 0 leaves the call size to the backend (the CPU's 1,024: the tiny prompt is one call, so
    // the result is the one-call result); a negative size is refused with a clear error.
    void automaticChunkSizeIsTheBackendsAndNegativeIsRefused() {
        EngineOptions options;
        options.kdaAlgorithm = KdaAlgorithm::Recurrent;
        options.prefillChunkTokens = 0;
        auto engine = openEngine("tiny", options);
        QVERIFY(engine);
        QCOMPARE(engine->backend().preferredPrefillChunk(), int64_t(1024));
        auto seq = engine->newSequence();
        QVERIFY(seq.ok());
        QVERIFY(bitwiseEqual(prefillAll(*engine, *seq, prompt_).values, whole_.values));
        options.prefillChunkTokens = -5;
        auto refused = Engine::open(goldenSet("tiny"), options);
        QVERIFY(!refused.ok());
        QCOMPARE(refused.error().code, ErrorCode::InvalidArgument);
        QVERIFY(refused.error().message.find("chunk") != std::string::npos);
    }

    void chunkedKdaSplitsAgreeClosely() {
        EngineOptions options;
        options.kdaAlgorithm = KdaAlgorithm::Chunked;
        auto engine = openEngine("tiny", options);
        QVERIFY(engine);
        for (size_t cut : {size_t(1), size_t(63), size_t(64), size_t(65), size_t(100)}) {
            auto seq = engine->newSequence();
            QVERIFY(seq.ok());
            Logits a = prefillAll(*engine, *seq, std::span(prompt_).first(cut));
            Logits b = prefillAll(*engine, *seq, std::span(prompt_).subspan(cut));
            a.values.insert(a.values.end(), b.values.begin(), b.values.end());
            QVERIFY2(maxRelative(a.values, whole_.values) < 1e-5, qPrintable(QString::number(cut)));
        }
    }

    void decodeContinuesPrefillExactly() {
        const size_t start = 100;
        auto seq = engine_->newSequence();
        QVERIFY(seq.ok());
        prefillAll(*engine_, *seq, std::span(prompt_).first(start));
        for (size_t i = start; i < prompt_.size(); ++i) {
            auto logits = engine_->decode(*seq, prompt_[i]);
            QVERIFY(logits.ok());
            QVERIFY2(bitwiseEqual(logits->last(), whole_.row(int64_t(i))),
                     qPrintable(QString("decode step %1").arg(i)));
        }
    }

    void forksAreIndependent() {
        auto base = engine_->newSequence();
        QVERIFY(base.ok());
        prefillAll(*engine_, *base, std::span(prompt_).first(70));
        auto fork = base->fork();
        QVERIFY(fork.ok());
        QCOMPARE(fork->tokens(), base->tokens());

        // The fork takes a different continuation; the base then takes the original one.
        const auto other = randomTokens(40, engine_->config().vocabSize, 7);
        Logits forkLogits = prefillAll(*engine_, *fork, other);
        Logits baseLogits = prefillAll(*engine_, *base, std::span(prompt_).subspan(70));
        QVERIFY(bitwiseEqual(baseLogits.values,
                             std::span(whole_.values).subspan(size_t(70 * whole_.vocab))));

        auto fresh = engine_->newSequence();
        QVERIFY(fresh.ok());
        std::vector<int32_t> forkPrompt(prompt_.begin(), prompt_.begin() + 70);
        forkPrompt.insert(forkPrompt.end(), other.begin(), other.end());
        Logits freshLogits = prefillAll(*engine_, *fresh, forkPrompt);
        QVERIFY(bitwiseEqual(forkLogits.values,
                             std::span(freshLogits.values).subspan(size_t(70 * whole_.vocab))));
        QCOMPARE(base->length(), int64_t(prompt_.size()));
        QCOMPARE(fork->length(), int64_t(110));
    }

    void stateRoundTripsThroughBytes() {
        auto seq = engine_->newSequence();
        QVERIFY(seq.ok());
        prefillAll(*engine_, *seq, std::span(prompt_).first(90));
        auto bytes = engine_->saveState(*seq);
        QVERIFY(bytes.ok());
        auto restored = engine_->loadState(*bytes);
        QVERIFY2(restored.ok(), restored.ok() ? "" : restored.error().message.c_str());
        QCOMPARE(restored->tokens(), seq->tokens());
        // Saving the restored state gives the same bytes, and both continue identically.
        auto again = engine_->saveState(*restored);
        QVERIFY(again.ok());
        QVERIFY(*again == *bytes);
        Logits a = prefillAll(*engine_, *seq, std::span(prompt_).subspan(90));
        Logits b = prefillAll(*engine_, *restored, std::span(prompt_).subspan(90));
        QVERIFY(bitwiseEqual(a.values, b.values));
        QVERIFY(
            bitwiseEqual(b.values, std::span(whole_.values).subspan(size_t(90 * whole_.vocab))));
    }

    void corruptStateIsRejected() {
        auto seq = engine_->newSequence();
        QVERIFY(seq.ok());
        prefillAll(*engine_, *seq, std::span(prompt_).first(20));
        auto bytes = engine_->saveState(*seq);
        QVERIFY(bytes.ok());

        auto flipped = *bytes;
        flipped[flipped.size() / 2] ^= std::byte{0x10};
        auto r1 = engine_->loadState(flipped);
        QVERIFY(!r1.ok());
        QCOMPARE(r1.error().code, ErrorCode::Format);
        QVERIFY(r1.error().message.find("checksum") != std::string::npos);

        auto truncated = std::vector<std::byte>(bytes->begin(), bytes->begin() + bytes->size() / 3);
        auto r2 = engine_->loadState(truncated);
        QVERIFY(!r2.ok());
        QCOMPARE(r2.error().code, ErrorCode::Format);

        auto r3 = engine_->loadState(std::vector<std::byte>(16, std::byte{0}));
        QVERIFY(!r3.ok());
        QVERIFY(r3.error().message.find("FOLIOSEQ") != std::string::npos);

        auto small = openEngine("small");
        QVERIFY(small);
        auto r4 = small->loadState(*bytes);
        QVERIFY(!r4.ok());
        QVERIFY(r4.error().message.find("different model") != std::string::npos);
    }

    void cancellationKeepsCompletedChunks() {
        EngineOptions options;
        options.kdaAlgorithm = KdaAlgorithm::Recurrent;
        options.prefillChunkTokens = 32;
        auto engine = openEngine("tiny", options);
        QVERIFY(engine);
        auto seq = engine->newSequence();
        QVERIFY(seq.ok());
        std::atomic<bool> cancel{false};
        std::vector<int64_t> progress;
        PrefillOptions o;
        o.logits = LogitsWanted::All;
        o.cancel = &cancel;
        o.onProgress = [&](const PrefillProgress& p) {
            progress.push_back(p.done);
            QCOMPARE(p.total, int64_t(130));
            if (p.done >= 64)
                cancel = true;
        };
        auto result = engine->prefill(*seq, prompt_, o);
        QVERIFY(!result.ok());
        QCOMPARE(result.error().code, ErrorCode::Cancelled);
        QCOMPARE(progress, (std::vector<int64_t>{32, 64}));
        QCOMPARE(seq->length(), int64_t(64));
        // The sequence is usable: prefilling the rest matches the uninterrupted run.
        Logits rest = prefillAll(*engine, *seq, std::span(prompt_).subspan(64));
        QVERIFY(
            bitwiseEqual(rest.values, std::span(whole_.values).subspan(size_t(64 * whole_.vocab))));
    }

    void badTokensLeaveTheSequenceUnchanged() {
        auto seq = engine_->newSequence();
        QVERIFY(seq.ok());
        prefillAll(*engine_, *seq, std::span(prompt_).first(10));
        const std::vector<int32_t> bad = {1, 2, int32_t(engine_->config().vocabSize)};
        auto r = engine_->prefill(*seq, bad);
        QVERIFY(!r.ok());
        QCOMPARE(r.error().code, ErrorCode::InvalidArgument);
        QVERIFY(r.error().message.find("outside the vocabulary") != std::string::npos);
        QCOMPARE(seq->length(), int64_t(10));
        auto r2 = engine_->decode(*seq, -5);
        QVERIFY(!r2.ok());
        Logits rest = prefillAll(*engine_, *seq, std::span(prompt_).subspan(10));
        QVERIFY(
            bitwiseEqual(rest.values, std::span(whole_.values).subspan(size_t(10 * whole_.vocab))));
    }

    void sequencesOfAnotherEngineAreRejected() {
        auto other = openEngine("tiny");
        QVERIFY(other);
        auto seq = other->newSequence();
        QVERIFY(seq.ok());
        const int32_t token[] = {1};
        auto r = engine_->prefill(*seq, token);
        QVERIFY(!r.ok());
        QVERIFY(r.error().message.find("different engine") != std::string::npos);
    }

    void missingModelIsAClearError() {
        auto engine = Engine::open("/nonexistent/model");
        QVERIFY(!engine.ok());
        QCOMPARE(engine.error().code, ErrorCode::NotFound);
        QVERIFY(engine.error().message.find("config.json") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(SequenceStateTest)
#include "test_sequence_state.moc"
