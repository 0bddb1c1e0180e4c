// SPDX-License-Identifier: GPL-3.0-or-later
// The two forms of the KDA delta rule (token by token, and chunked with the UT transform) against
// each other and against a plain double-precision evaluation of the recurrence, for lengths
// around chunk boundaries, nonzero initial states and strong decay.
#include <QtTest>

#include <random>

#include "inference/cpu/cpu_model.h"

using namespace folio::inference::cpu;

namespace {

struct Problem {
    int64_t T, K, V;
    std::vector<float> q, k, v, g, beta, state;
};

Problem makeProblem(int64_t T, int64_t K, int64_t V, float decayScale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    Problem p{T, K, V, {}, {}, {}, {}, {}, {}};
    auto normalized = [&](std::vector<float>& x, float scale) {
        x.resize(size_t(T * K));
        for (int64_t t = 0; t < T; ++t) {
            double sum = 0;
            for (int64_t i = 0; i < K; ++i) {
                x[size_t(t * K + i)] = normal(rng);
                sum += double(x[size_t(t * K + i)]) * x[size_t(t * K + i)];
            }
            for (int64_t i = 0; i < K; ++i)
                x[size_t(t * K + i)] *= float(scale / std::sqrt(sum));
        }
    };
    normalized(p.q, 1.0f / std::sqrt(float(K)));
    normalized(p.k, 1.0f);
    p.v.resize(size_t(T * V));
    for (auto& x : p.v)
        x = normal(rng);
    p.g.resize(size_t(T * K));
    for (auto& x : p.g)
        x = -decayScale * unit(rng);
    p.beta.resize(size_t(T));
    for (auto& x : p.beta)
        x = unit(rng);
    p.state.resize(size_t(K * V));
    for (auto& x : p.state)
        x = 0.1f * normal(rng);
    return p;
}

KdaHeadInputs inputs(const Problem& p, int64_t rowStrideKV) {
    KdaHeadInputs in;
    in.tokens = p.T;
    in.keyDim = p.K;
    in.valueDim = p.V;
    in.rowStride = rowStrideKV;
    in.betaStride = 1;
    in.q = p.q.data();
    in.k = p.k.data();
    in.v = p.v.data();
    in.g = p.g.data();
    in.beta = p.beta.data();
    return in;
}

// The recurrence exactly as written in the tech report, in double precision.
void referenceRecurrence(const Problem& p, std::vector<double>& state, std::vector<double>& out) {
    const int64_t K = p.K, V = p.V;
    state.assign(p.state.begin(), p.state.end());
    out.assign(size_t(p.T * V), 0.0);
    for (int64_t t = 0; t < p.T; ++t) {
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < V; ++j)
                state[size_t(i * V + j)] *= std::exp(double(p.g[size_t(t * K + i)]));
        for (int64_t j = 0; j < V; ++j) {
            double pred = 0;
            for (int64_t i = 0; i < K; ++i)
                pred += p.k[size_t(t * K + i)] * state[size_t(i * V + j)];
            const double u = p.beta[size_t(t)] * (p.v[size_t(t * V + j)] - pred);
            for (int64_t i = 0; i < K; ++i)
                state[size_t(i * V + j)] += p.k[size_t(t * K + i)] * u;
        }
        for (int64_t j = 0; j < V; ++j) {
            double o = 0;
            for (int64_t i = 0; i < K; ++i)
                o += p.q[size_t(t * K + i)] * state[size_t(i * V + j)];
            out[size_t(t * V + j)] = o;
        }
    }
}

template <typename A, typename B>
double relErr(const A& a, const B& b) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
        norm += double(b[i]) * double(b[i]);
    }
    return std::sqrt(diff / std::max(norm, 1e-300));
}

}  // namespace

class KdaForms : public QObject {
    Q_OBJECT

  private slots:
    void formsAgree_data() {
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("chunk");
        QTest::addColumn<float>("decay");
        for (int T : {1, 5, 63, 64, 65, 130}) {
            for (int chunk : {16, 64})
                QTest::addRow("T=%d chunk=%d", T, chunk) << T << chunk << 0.5f;
        }
        QTest::addRow("strong decay") << 150 << 64 << 30.0f;
        QTest::addRow("no decay") << 100 << 64 << 0.0f;
    }

    void formsAgree() {
        QFETCH(int, tokens);
        QFETCH(int, chunk);
        QFETCH(float, decay);
        // Unequal key and value widths catch transposed indexing.
        Problem p = makeProblem(tokens, 24, 16, decay, uint32_t(tokens * 31 + chunk));
        std::vector<double> refState, refOut;
        referenceRecurrence(p, refState, refOut);

        std::vector<float> recState = p.state, recOut(size_t(p.T * p.V));
        // Rows of q/k/g are K wide and v/out are V wide; with K != V use separate buffers per
        // width: the head functions take one stride, so lay v and out with stride K.
        Problem padded = p;
        padded.v.assign(size_t(p.T * p.K), 0.0f);
        for (int64_t t = 0; t < p.T; ++t)
            std::copy_n(p.v.begin() + t * p.V, p.V, padded.v.begin() + t * p.K);
        std::vector<float> recPadded(size_t(p.T * p.K));
        kdaRecurrentHead(inputs(padded, p.K), recState.data(), recPadded.data());
        std::vector<float> chState = p.state, chPadded(size_t(p.T * p.K));
        kdaChunkedHead(inputs(padded, p.K), chState.data(), chPadded.data(), chunk);
        std::vector<float> chOut(size_t(p.T * p.V));
        for (int64_t t = 0; t < p.T; ++t) {
            std::copy_n(recPadded.begin() + t * p.K, p.V, recOut.begin() + t * p.V);
            std::copy_n(chPadded.begin() + t * p.K, p.V, chOut.begin() + t * p.V);
        }
        for (float x : chOut)
            QVERIFY(std::isfinite(x));
        QVERIFY2(relErr(recOut, refOut) < 1e-5, "recurrent output");
        QVERIFY2(relErr(recState, refState) < 1e-5, "recurrent state");
        QVERIFY2(relErr(chOut, refOut) < 1e-5, "chunked output");
        QVERIFY2(relErr(chState, refState) < 1e-5, "chunked state");
    }

    void chunkedResumesFromAnyTokenBoundary() {
        // State after a tail shorter than a chunk, then continued, equals one pass.
        Problem p = makeProblem(100, 32, 32, 0.5f, 3);
        std::vector<float> whole = p.state, wholeOut(size_t(p.T * p.V));
        kdaChunkedHead(inputs(p, p.K), whole.data(), wholeOut.data(), 64);
        for (int64_t cut : {1, 37, 64, 99}) {
            std::vector<float> s = p.state, out(size_t(p.T * p.V));
            KdaHeadInputs first = inputs(p, p.K);
            first.tokens = cut;
            kdaChunkedHead(first, s.data(), out.data(), 64);
            KdaHeadInputs second = inputs(p, p.K);
            second.tokens = p.T - cut;
            second.q += cut * p.K;
            second.k += cut * p.K;
            second.v += cut * p.V;
            second.g += cut * p.K;
            second.beta += cut;
            kdaChunkedHead(second, s.data(), out.data() + cut * p.V, 64);
            QVERIFY2(relErr(s, whole) < 1e-5, qPrintable(QString::number(cut)));
            QVERIFY2(relErr(out, wholeOut) < 1e-5, qPrintable(QString::number(cut)));
        }
    }
};

QTEST_APPLESS_MAIN(KdaForms)
#include "test_kda_forms.moc"
