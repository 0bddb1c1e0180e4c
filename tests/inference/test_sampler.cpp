// SPDX-License-Identifier: GPL-3.0-or-later
// Sampling: greedy, temperature, top-k, top-p, repetition penalty, seeding, option checks.
#include <QtTest>

#include <cmath>

#include "inference/sampler.h"

using namespace folio::inference;

class SamplerTest : public QObject {
    Q_OBJECT

  private slots:
    void greedyIsArgmaxWithLowestIdOnTies() {
        Sampler s(SamplingOptions{});
        const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
        QCOMPARE(s.sample(logits, {}), 1);
        QCOMPARE(argmax(std::vector<float>{-3.0f, -1.0f, -2.0f}), 1);
    }

    void sameSeedSameTokens() {
        std::vector<float> logits(50);
        for (size_t i = 0; i < logits.size(); ++i)
            logits[i] = std::sin(float(i));
        SamplingOptions o;
        o.temperature = 1.0f;
        o.seed = 99;
        Sampler a(o), b(o);
        o.seed = 100;
        Sampler c(o);
        std::vector<int32_t> ta, tb, tc;
        for (int i = 0; i < 64; ++i) {
            ta.push_back(a.sample(logits, {}));
            tb.push_back(b.sample(logits, {}));
            tc.push_back(c.sample(logits, {}));
        }
        QCOMPARE(ta, tb);
        QVERIFY(ta != tc);
    }

    void temperatureFollowsTheSoftmax() {
        const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
        SamplingOptions o;
        o.temperature = 1.0f;
        o.seed = 1;
        Sampler s(o);
        int counts[3] = {};
        const int n = 30000;
        for (int i = 0; i < n; ++i)
            ++counts[s.sample(logits, {})];
        QVERIFY(std::abs(counts[0] / double(n) - 0.5) < 0.015);
        QVERIFY(std::abs(counts[1] / double(n) - 0.3) < 0.015);
        QVERIFY(std::abs(counts[2] / double(n) - 0.2) < 0.015);
    }

    void topKAndTopPRestrictTheCandidates() {
        const std::vector<float> logits = {1.0f, 3.0f, 2.9f, 2.8f, 0.0f};
        SamplingOptions o;
        o.temperature = 5.0f;
        o.topK = 2;
        o.seed = 3;
        Sampler k(o);
        for (int i = 0; i < 500; ++i) {
            const int32_t t = k.sample(logits, {});
            QVERIFY(t == 1 || t == 2);
        }
        o.topK = 0;
        o.topP = 0.01f;  // only the most likely token survives the nucleus cut
        Sampler p(o);
        for (int i = 0; i < 200; ++i)
            QCOMPARE(p.sample(logits, {}), 1);
    }

    void repetitionPenaltyDemotesSeenTokens() {
        const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
        SamplingOptions o;
        o.repetitionPenalty = 1.5f;
        Sampler s(o);
        const std::vector<int32_t> context = {0, 0, 0};
        QCOMPARE(s.sample(logits, context), 1);  // 2.0 / 1.5 < 1.9
        QCOMPARE(Sampler(SamplingOptions{}).sample(logits, context), 0);
    }

    void invalidOptionsAreRejected() {
        QVERIFY(validate(SamplingOptions{}).ok());
        SamplingOptions o;
        o.temperature = -1.0f;
        QVERIFY(!validate(o).ok());
        o = {};
        o.topP = 0.0f;
        QVERIFY(!validate(o).ok());
        o = {};
        o.topK = -2;
        QVERIFY(!validate(o).ok());
        o = {};
        o.repetitionPenalty = 0.0f;
        QVERIFY(!validate(o).ok());
    }
};

QTEST_APPLESS_MAIN(SamplerTest)
#include "test_sampler.moc"
