// SPDX-License-Identifier: GPL-3.0-or-later
// folio: the desktop application. Reads the saved settings (and command-line overrides), asks for
// a model on first run (a Kimi Linear checkpoint folder or the bundled demo model), then opens
// the main window.
#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>

#include "ui/app_settings.h"
#include "ui/first_run_dialog.h"
#include "ui/main_window.h"

namespace {

// --help and --version answer without a display.
bool onlyAsksForText(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const QByteArray a(argv[i]);
        if (a == "-h" || a == "--help" || a == "--help-all" || a == "-v" || a == "--version")
            return true;
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    if (onlyAsksForText(argc, argv))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("Folio"));
    QApplication::setApplicationName(QStringLiteral("folio"));
    QApplication::setApplicationDisplayName(QStringLiteral("Folio"));
    QApplication::setApplicationVersion(QStringLiteral(FOLIO_VERSION));
    QApplication::setDesktopFileName(QStringLiteral("folio"));

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Ask questions of long documents with Kimi Linear on your own computer."));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption demo(QStringLiteral("demo"),
                                  QStringLiteral("Use the bundled demo model (random weights; "
                                                 "answers are not meaningful)."));
    const QCommandLineOption model(QStringLiteral("model"),
                                   QStringLiteral("Kimi Linear checkpoint folder."),
                                   QStringLiteral("dir"));
    const QCommandLineOption data(QStringLiteral("data"), QStringLiteral("Data folder."),
                                  QStringLiteral("dir"));
    const QCommandLineOption cpu(QStringLiteral("cpu"), QStringLiteral("Use the CPU backend."));
    parser.addOptions({demo, model, data, cpu});
    parser.process(app);

    QSettings store;
    folio::ui::AppSettings settings = folio::ui::AppSettings::load(store);
    if (parser.isSet(demo)) {
        settings.useDemoModel = true;
    } else if (parser.isSet(model)) {
        settings.useDemoModel = false;
        settings.modelDir = parser.value(model);
    }
    if (parser.isSet(data))
        settings.dataDir = parser.value(data);
    if (parser.isSet(cpu))
        settings.useCuda = false;

    if (!settings.hasModel()) {
        folio::ui::FirstRunDialog welcome;
        if (welcome.exec() != QDialog::Accepted)
            return 0;
        settings.useDemoModel = welcome.demoChosen();
        if (!welcome.demoChosen())
            settings.modelDir = welcome.modelFolder();
        settings.save(store);
    } else if (!parser.isSet(demo) && !parser.isSet(model) && !parser.isSet(data)) {
        settings.save(store);
    }

    folio::ui::MainWindow window(settings.launchOptions());
    window.show();
    return QApplication::exec();
}
