// SPDX-License-Identifier: GPL-3.0-or-later
#include "message_banner.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QStyle>
#include <QToolButton>

namespace folio::ui {

MessageBanner::MessageBanner(QWidget* parent) : QFrame(parent), label_(new QLabel(this)) {
    setObjectName(QStringLiteral("messageBanner"));
    setFrameShape(QFrame::StyledPanel);
    setAutoFillBackground(true);
    label_->setWordWrap(true);
    label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* close = new QToolButton(this);
    close->setIcon(style()->standardIcon(QStyle::SP_TitleBarCloseButton));
    close->setToolTip(tr("Dismiss"));
    close->setAutoRaise(true);
    connect(close, &QToolButton::clicked, this, &QWidget::hide);
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(8, 4, 4, 4);
    layout->addWidget(label_, 1);
    layout->addWidget(close, 0, Qt::AlignTop);
    hide();
}

void MessageBanner::show(Level level, const QString& text) {
    level_ = level;
    history_ << text;
    label_->setText(text);
    // Colours derived from the system palette so light and dark themes both read well.
    QPalette p = palette();
    const QColor base = p.color(QPalette::Window);
    QColor tint = level == Level::Error     ? QColor(220, 50, 47)
                  : level == Level::Warning ? QColor(200, 150, 0)
                                            : p.color(QPalette::Highlight);
    tint.setAlpha(60);
    const QColor mixed =
        QColor::fromRgbF(base.redF() * (1 - tint.alphaF()) + tint.redF() * tint.alphaF(),
                         base.greenF() * (1 - tint.alphaF()) + tint.greenF() * tint.alphaF(),
                         base.blueF() * (1 - tint.alphaF()) + tint.blueF() * tint.alphaF());
    p.setColor(QPalette::Window, mixed);
    setPalette(p);
    setVisible(true);
}

QString MessageBanner::text() const {
    return label_->text();
}

}  // namespace folio::ui
