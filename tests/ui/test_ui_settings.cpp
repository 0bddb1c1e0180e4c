// SPDX-License-Identifier: GPL-3.0-or-later
// Choosing a model: a folder that is not a Kimi Linear checkpoint is refused with the list of
// what is missing (by the first-run dialog and the settings dialog alike), a complete one is
// accepted; settings round-trip through QSettings into the launch options; a model that cannot be
// opened is a message in a window that keeps working.
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QSettings>
#include <QtTest>

#include "ui/app_settings.h"
#include "ui/chat_pane.h"
#include "ui/first_run_dialog.h"
#include "ui/main_window.h"
#include "ui/message_banner.h"
#include "ui/model_folder_check.h"
#include "ui/settings_dialog.h"
#include "ui_test_support.h"

using namespace folio::ui;
using namespace folio::ui::testing;
namespace fs = std::filesystem;

class UiSettingsTest : public QObject {
    Q_OBJECT
    fs::path root_ = suiteRoot("ui_settings");
    fs::path model_ = root_ / "tiny-model";

  private slots:
    void initTestCase() {
        isolateSettings("ui_settings");
        QVERIFY(ensureTinyModel(model_).ok());
    }

    void modelFolderCheckNamesWhatIsMissing() {
        const fs::path empty = freshDir(root_ / "empty");
        const QStringList problems = modelFolderProblems(QString::fromStdString(empty.string()));
        QCOMPARE(problems.size(), 4);
        const QString all = problems.join('\n');
        for (const char* part :
             {"config.json", "model.safetensors", "tiktoken.model", "tokenizer_config.json"})
            QVERIFY2(all.contains(QLatin1String(part)), part);
        QVERIFY(modelFolderProblems(QString::fromStdString(model_.string())).isEmpty());

        // A broken config is reported with the parser's reason.
        const fs::path broken = freshDir(root_ / "broken");
        for (const char* f : {"model.safetensors", "tiktoken.model", "tokenizer_config.json"})
            fs::copy_file(model_ / f, broken / f);
        writeTextFile(broken / "config.json", "{\"vocab_size\": \"many\"}");
        const QStringList brokenProblems =
            modelFolderProblems(QString::fromStdString(broken.string()));
        QCOMPARE(brokenProblems.size(), 1);
        QVERIFY(brokenProblems.front().startsWith(QStringLiteral("config.json: ")));
    }

    void firstRunDialogRefusesAnIncompleteFolder() {
        FirstRunDialog dialog;
        dialog.show();
        QVERIFY(!dialog.tryFolder(QString::fromStdString((root_ / "empty").string())));
        QVERIFY(dialog.isVisible());
        QVERIFY(dialog.problemText().contains(QStringLiteral("tiktoken.model is missing")));
        QVERIFY(saveScreenshot(&dialog, QStringLiteral("ui_settings-first-run-refused")));
        QVERIFY(dialog.tryFolder(QString::fromStdString(model_.string())));
        QCOMPARE(dialog.result(), int(QDialog::Accepted));
        QCOMPARE(dialog.modelFolder(), QString::fromStdString(model_.string()));
        QVERIFY(!dialog.demoChosen());
    }

    void settingsRoundTripAndValidate() {
        AppSettings a;
        a.modelDir = QString::fromStdString(model_.string());
        a.dataDir = QString::fromStdString((root_ / "data").string());
        a.temperature = 0.7;
        a.topK = 40;
        a.topP = 0.9;
        a.seed = 17;
        a.maxAnswerTokens = 256;
        a.diskBudgetGiB = 12;
        {
            QSettings store;
            a.save(store);
        }
        QSettings store;
        const AppSettings b = AppSettings::load(store);
        QCOMPARE(b.modelDir, a.modelDir);
        QCOMPARE(b.topK, 40);
        QCOMPARE(b.seed, 17);
        const LaunchOptions o = b.launchOptions();
        QCOMPARE(o.modelDir, a.modelDir);
        QCOMPARE(o.dataDir, a.dataDir);
        QCOMPARE(o.diskBudgetBytes, int64_t{12} << 30);
        QCOMPARE(o.generation.maxTokens, 256);
        QCOMPARE(o.generation.sampling.topK, 40);
        QVERIFY(!o.demoModel);

        SettingsDialog dialog(b);
        dialog.show();
        QVERIFY(dialog.modelProblem().isEmpty());
        QCOMPARE(dialog.settings().temperature, 0.7);
        auto* folder = dialog.findChild<QLineEdit*>(QStringLiteral("modelFolder"));
        QVERIFY(folder);
        folder->setText(QString::fromStdString((root_ / "empty").string()));
        QVERIFY(dialog.modelProblem().contains(QStringLiteral("config.json is missing")));
        dialog.accept();
        QVERIFY(dialog.isVisible());  // refused: the folder is not a checkpoint
        QVERIFY(saveScreenshot(&dialog, QStringLiteral("ui_settings-dialog-refused")));
        for (QRadioButton* r : dialog.findChildren<QRadioButton*>())
            if (r->text() == QString::fromUtf8(kDemoModelLabel))
                r->setChecked(true);
        QVERIFY(dialog.modelProblem().isEmpty());
        dialog.accept();
        QCOMPARE(dialog.result(), int(QDialog::Accepted));
        QVERIFY(dialog.settings().useDemoModel);
        QVERIFY(dialog.settings().launchOptions().demoModel);
    }

    void aModelThatDoesNotOpenIsAMessage() {
        LaunchOptions o = tinyOptions(freshDir(root_ / "data-bad-model"), root_ / "empty");
        MainWindow w(o);
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.banner()->isVisible(), kTimeoutMs);
        QCOMPARE(w.banner()->level(), MessageBanner::Level::Error);
        QVERIFY(w.banner()->text().contains(QStringLiteral("Could not open the model")));
        QVERIFY(!w.client()->isReady());
        QVERIFY(!w.chat()->askButton()->isEnabled());
        QVERIFY(saveScreenshot(&w, QStringLiteral("ui_settings-model-missing")));
        // The window keeps working: it can reopen on a good model.
        w.reopen(tinyOptions(freshDir(root_ / "data-good-model"), model_));
        QTRY_VERIFY_WITH_TIMEOUT(w.client()->isReady(), kTimeoutMs);
    }
};

QTEST_MAIN(UiSettingsTest)
#include "test_ui_settings.moc"
