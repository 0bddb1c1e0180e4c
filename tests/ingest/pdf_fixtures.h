// SPDX-License-Identifier: GPL-3.0-or-later
// PDF inputs for the ingest tests and the benchmark tool, drawn with Qt's PDF writer at 72 dpi so
// painter units are points. Owns: nothing. Promises: the same arguments always draw the same
// pages; every line of text is one drawText call at a known place. Never needs a display (the
// offscreen platform is enough).
#pragma once

#include <QFont>
#include <QImage>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QString>
#include <QStringList>

namespace folio::ingest::testing {

inline constexpr int kPageWidth = 595;  // A4 in points
inline constexpr int kPageHeight = 842;

// A writer at 72 dpi on A4 with no margins; `title` goes into the metadata.
inline void setUpWriter(QPdfWriter& writer, const QString& title) {
    writer.setResolution(72);
    writer.setPageSize(QPageSize(QPageSize::A4));
    writer.setPageMargins(QMarginsF(0, 0, 0, 0));
    writer.setTitle(title);
    writer.setCreator(QStringLiteral("folio ingest tests"));
}

inline QFont bodyFont() {
    QFont font(QStringLiteral("DejaVu Sans"));
    font.setPixelSize(10);
    return font;
}

// Lines from the top left corner of a box, 14 points apart.
inline void drawLines(QPainter& painter, const QStringList& lines, int x, int top) {
    painter.setFont(bodyFont());
    int y = top;
    for (const QString& line : lines) {
        painter.drawText(QPointF(x, y), line);
        y += 14;
    }
}

// Column text: "<tag> column line N of page P: <filler words>".
inline QStringList columnLines(const QString& tag, int page, int count) {
    static const char* const kFiller[] = {"contract terms apply", "notice period ends",
                                          "payment is due", "parties agree here",
                                          "liability is limited"};
    QStringList lines;
    for (int i = 1; i <= count; ++i)
        lines << QStringLiteral("%1 line %2 p%3 %4")
                     .arg(tag)
                     .arg(i)
                     .arg(page)
                     .arg(QLatin1String(kFiller[i % 5]));
    return lines;
}

// Two columns of `linesPerColumn` lines with a wide gutter; a heading spans both.
inline void drawTwoColumnPage(QPainter& painter, int page, int linesPerColumn = 40) {
    QFont heading = bodyFont();
    heading.setPixelSize(16);
    painter.setFont(heading);
    painter.drawText(QPointF(50, 50), QStringLiteral("Heading of page %1").arg(page));
    drawLines(painter, columnLines(QStringLiteral("Left"), page, linesPerColumn), 50, 90);
    drawLines(painter, columnLines(QStringLiteral("Right"), page, linesPerColumn), 320, 90);
}

// A page whose only content is a picture (no text layer).
inline void drawImageOnlyPage(QPainter& painter) {
    QImage image(200, 120, QImage::Format_RGB32);
    image.fill(QColor(30, 90, 160));
    for (int y = 20; y < 100; ++y)
        for (int x = 20; x < 180; x += 3)
            image.setPixel(x, y, qRgb(240, 240, 240));
    painter.drawImage(QRectF(100, 100, 300, 180), image);
}

}  // namespace folio::ingest::testing
