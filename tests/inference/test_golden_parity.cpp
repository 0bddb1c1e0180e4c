// SPDX-License-Identifier: GPL-3.0-or-later
// The CPU engine against the independent reference (../shared/golden): every measure of
// folio-engine check-golden, for both shipped sets and both forms of the KDA recurrence.
#include <QtTest>

#include "inference/golden_check.h"

using namespace folio::inference;

class GoldenParity : public QObject {
    Q_OBJECT

  private:
    void expectPass(const QString& set, KdaAlgorithm algorithm) {
        const std::filesystem::path dir =
            std::filesystem::path(FOLIO_GOLDEN_DIR) / set.toStdString();
        QVERIFY2(std::filesystem::exists(dir / "golden.safetensors"),
                 qPrintable("reference set missing: " + QString::fromStdString(dir.string())));
        EngineOptions options;
        options.kdaAlgorithm = algorithm;
        auto report = runGoldenCheck(dir, options);
        QVERIFY2(report.ok(), report.ok() ? "" : report.error().message.c_str());
        qInfo().noquote() << QString::fromStdString(report->toJson());
        QVERIFY2(report->pass(), report->toJson().c_str());
        QCOMPARE(report->generatedMatching, report->generatedTokens);
        QVERIFY(report->generatedTokens > 0);
        QCOMPARE(report->restoredMatching, report->restoredTokens);
        QVERIFY(report->restoredTokens > 0);
        for (const auto& [name, value] : report->measures)
            QVERIFY2(value <= 1e-4, name.c_str());
    }

  private slots:
    void tinyRecurrent() { expectPass("tiny", KdaAlgorithm::Recurrent); }
    void tinyChunked() { expectPass("tiny", KdaAlgorithm::Chunked); }
    void smallRecurrent() { expectPass("small", KdaAlgorithm::Recurrent); }
    void smallChunked() { expectPass("small", KdaAlgorithm::Chunked); }

    void relativeL2Measures() {
        const float ref[] = {3.0f, 4.0f};
        const float same[] = {3.0f, 4.0f};
        const float off[] = {3.0f, 4.5f};
        QCOMPARE(relativeL2(same, ref, 2), 0.0);
        QVERIFY(qAbs(relativeL2(off, ref, 2) - 0.1) < 1e-9);
    }

    void missingSetIsAnError() {
        auto report = runGoldenCheck("/nonexistent/golden/set", EngineOptions{});
        QVERIFY(!report.ok());
        QVERIFY(report.error().message.find("golden.safetensors") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(GoldenParity)
#include "test_golden_parity.moc"
