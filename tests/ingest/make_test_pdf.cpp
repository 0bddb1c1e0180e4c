// SPDX-License-Identifier: GPL-3.0-or-later
// folio-make-test-pdf OUT.pdf PAGES: writes PAGES two-column pages (the benchmark input of
// docs/PERFORMANCE.md). Run with QT_QPA_PLATFORM=offscreen on machines without a display.
#include <QGuiApplication>

#include <cstdio>

#include "pdf_fixtures.h"

int main(int argc, char** argv) {
    QGuiApplication app(argc, argv);
    const QStringList args = QGuiApplication::arguments();
    bool ok = false;
    const int pages = args.size() == 3 ? args[2].toInt(&ok) : 0;
    if (!ok || pages <= 0) {
        std::fprintf(stderr, "usage: folio-make-test-pdf OUT.pdf PAGES\n");
        return 2;
    }
    QPdfWriter writer(args[1]);
    folio::ingest::testing::setUpWriter(writer, QStringLiteral("Benchmark document"));
    QPainter painter(&writer);
    for (int page = 1; page <= pages; ++page) {
        if (page > 1)
            writer.newPage();
        folio::ingest::testing::drawTwoColumnPage(painter, page);
    }
    painter.end();
    std::printf("wrote %d pages to %s\n", pages, qPrintable(args[1]));
    return 0;
}
