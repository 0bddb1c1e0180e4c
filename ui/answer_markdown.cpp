// SPDX-License-Identifier: GPL-3.0-or-later
#include "answer_markdown.h"

#include <QLocale>

namespace folio::ui {
namespace {

constexpr const char* kScheme = "folio-cite";

QString escapedLinkText(const std::string& bytes) {
    QString out;
    for (const QChar c : QString::fromStdString(bytes)) {
        if (c == u'[' || c == u']' || c == u'\\' || c == u'*' || c == u'_' || c == u'`')
            out += u'\\';
        out += c;
    }
    return out;
}

}  // namespace

LinkedAnswer linkCitations(const std::string& answer, int entry) {
    LinkedAnswer linked;
    linked.citations = ingest::findCitations(answer);
    // Several citations can share one bracket ("[a p.1; b p.2]"): each bracket is linked once, to
    // its first citation, and the others stay reachable by next/previous citation.
    size_t copied = 0;
    for (size_t i = 0; i < linked.citations.size(); ++i) {
        const ingest::Citation& c = linked.citations[i];
        if (c.begin < copied)
            continue;
        linked.markdown += QString::fromStdString(answer.substr(copied, c.begin - copied));
        linked.markdown += QStringLiteral("[%1](%2)")
                               .arg(escapedLinkText(answer.substr(c.begin, c.end - c.begin)),
                                    citationUrl(entry, static_cast<int>(i)).toString());
        copied = c.end;
    }
    linked.markdown += QString::fromStdString(answer.substr(copied));
    return linked;
}

QUrl citationUrl(int entry, int index) {
    QUrl url;
    url.setScheme(QString::fromLatin1(kScheme));
    url.setPath(QStringLiteral("%1-%2").arg(entry).arg(index));
    return url;
}

std::optional<CitationRef> parseCitationUrl(const QUrl& url) {
    if (url.scheme() != QLatin1String(kScheme))
        return std::nullopt;
    const QStringList parts = url.path().split(u'-');
    if (parts.size() != 2)
        return std::nullopt;
    bool entryOk = false, indexOk = false;
    CitationRef ref{parts[0].toInt(&entryOk), parts[1].toInt(&indexOk)};
    if (!entryOk || !indexOk)
        return std::nullopt;
    return ref;
}

QString groupedNumber(int64_t value) {
    return QLocale(QLocale::English).toString(static_cast<qlonglong>(value));
}

QString formatAnswerStats(const storage::AnswerStats& stats, const QString& reusedFrom) {
    QString reused = groupedNumber(stats.reusedTokens) + QStringLiteral(" tokens reused");
    if (!reusedFrom.isEmpty() && reusedFrom != QLatin1String("none"))
        reused += QStringLiteral(" (%1)").arg(reusedFrom);
    return QStringLiteral("%1 · %2 prefilled · first token after %3 ms · %4 tokens at %5/s")
        .arg(reused, groupedNumber(stats.prefilledTokens))
        .arg(stats.timeToFirstTokenMs, 0, 'f', 0)
        .arg(groupedNumber(stats.generatedTokens))
        .arg(stats.tokensPerSecond, 0, 'f', 1);
}

}  // namespace folio::ui
