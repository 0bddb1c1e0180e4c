// SPDX-License-Identifier: GPL-3.0-or-later
// folio-cli ingest: reads each source (in parallel) and reports what its document holds.
// Token counts need Kimi's tokenizer files (tiktoken.model + tokenizer_config.json): from
// --tokenizer DIR, else $FOLIO_TOKENIZER_DIR; without either, tokens are reported as not counted
// (never estimated).
#include <QCommandLineParser>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcessEnvironment>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "cli_commands.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"
#include "ingest/source_ingest.h"

namespace folio::cli {

namespace {

using ingest::Document;

struct SourceReport {
    QString path;
    std::optional<Document> document;
    std::string error;
};

QString q(const std::string& s) {
    return QString::fromStdString(s);
}

std::optional<uint64_t> parseByteSize(QString text) {
    text = text.trimmed().toUpper();
    uint64_t unit = 1;
    if (text.endsWith(QLatin1Char('K')))
        unit = uint64_t{1} << 10;
    else if (text.endsWith(QLatin1Char('M')))
        unit = uint64_t{1} << 20;
    else if (text.endsWith(QLatin1Char('G')))
        unit = uint64_t{1} << 30;
    if (unit != 1)
        text.chop(1);
    bool ok = false;
    const qulonglong value = text.toULongLong(&ok);
    if (!ok)
        return std::nullopt;
    return value * unit;
}

std::string grouped(int64_t value) {
    std::string digits = std::to_string(value);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return out;
}

QJsonObject toJson(const SourceReport& r) {
    QJsonObject o;
    o[QStringLiteral("path")] = r.path;
    if (!r.document) {
        o[QStringLiteral("ok")] = false;
        o[QStringLiteral("error")] = q(r.error);
        return o;
    }
    const Document& d = *r.document;
    o[QStringLiteral("ok")] = true;
    o[QStringLiteral("name")] = q(d.name);
    o[QStringLiteral("kind")] = QString::fromLatin1(ingest::sourceKindName(d.kind));
    if (!d.title.empty())
        o[QStringLiteral("title")] = q(d.title);
    if (d.kind == ingest::SourceKind::Pdf)
        o[QStringLiteral("pages")] = d.pageCount;
    else
        o[QStringLiteral("files")] = d.fileCount;
    o[QStringLiteral("segments")] = static_cast<qint64>(d.segments.size());
    o[QStringLiteral("textBytes")] = static_cast<qint64>(d.text.size());
    o[QStringLiteral("tokens")] =
        d.tokensCounted() ? QJsonValue(static_cast<qint64>(d.tokenCount)) : QJsonValue();
    o[QStringLiteral("contentHash")] = q(d.contentHash);
    o[QStringLiteral("seconds")] = d.ingestSeconds;
    QJsonArray warnings;
    for (const auto& w : d.warnings)
        warnings.append(q(w));
    o[QStringLiteral("warnings")] = warnings;
    QJsonArray skipped;
    for (const auto& s : d.skipped)
        skipped.append(QJsonObject{{QStringLiteral("item"), q(s.item)},
                                   {QStringLiteral("reason"), q(s.reason)}});
    o[QStringLiteral("skipped")] = skipped;
    return o;
}

void printText(const SourceReport& r, int maxSkipped) {
    if (!r.document) {
        std::printf("%s\n  error: %s\n", qPrintable(r.path), r.error.c_str());
        return;
    }
    const Document& d = *r.document;
    const bool pdf = d.kind == ingest::SourceKind::Pdf;
    const int units = pdf ? d.pageCount : d.fileCount;
    const double rate = d.ingestSeconds > 0 ? units / d.ingestSeconds : 0;
    std::printf("%s (%s)\n", d.name.c_str(), ingest::sourceKindName(d.kind));
    std::printf(
        "  %s %s, %s, %.2f s (%.1f %s/s)\n", grouped(units).c_str(), pdf ? "pages" : "files",
        d.tokensCounted() ? (grouped(d.tokenCount) + " tokens").c_str() : "tokens not counted",
        d.ingestSeconds, rate, pdf ? "pages" : "files");
    if (!d.title.empty())
        std::printf("  title: %s\n", d.title.c_str());
    std::printf("  content hash: %s\n", d.contentHash.c_str());
    for (const auto& w : d.warnings)
        std::printf("  warning: %s\n", w.c_str());
    if (!d.skipped.empty())
        std::printf("  skipped: %zu\n", d.skipped.size());
    int shown = 0;
    for (const auto& s : d.skipped) {
        if (maxSkipped >= 0 && shown == maxSkipped) {
            std::printf("    ... and %zu more (--all-skipped lists them)\n",
                        d.skipped.size() - static_cast<size_t>(shown));
            break;
        }
        std::printf("    %s: %s\n", s.item.c_str(), s.reason.c_str());
        ++shown;
    }
}

// QCommandLineParser names the executable only; the usage line names the subcommand too.
QString helpText(const QCommandLineParser& parser) {
    QString help = parser.helpText();
    const qsizetype endOfFirstLine = help.indexOf(QLatin1Char('\n'));
    return QStringLiteral("Usage: folio-cli ingest [options] PATH...") + help.mid(endOfFirstLine);
}

}  // namespace

int runIngestCommand(const QStringList& args) {
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Reads PDF files, code repositories or folders, and text files the way a session does, and "
        "reports per source its pages or files, tokens, skipped items with reasons and the time "
        "taken. Sources are read in parallel."));
    parser.addHelpOption();
    parser.addPositionalArgument(QStringLiteral("PATH"), QStringLiteral("sources"),
                                 QStringLiteral("PATH..."));
    const QCommandLineOption json(QStringLiteral("json"), QStringLiteral("print one JSON object"));
    const QCommandLineOption tokenizerDir(
        QStringLiteral("tokenizer"),
        QStringLiteral("model folder with tiktoken.model and tokenizer_config.json (default: "
                       "$FOLIO_TOKENIZER_DIR; without one, tokens are not counted)"),
        QStringLiteral("DIR"));
    const QCommandLineOption password(QStringLiteral("password"),
                                      QStringLiteral("password of encrypted PDFs"),
                                      QStringLiteral("PASSWORD"));
    const QCommandLineOption include(QStringLiteral("include"),
                                     QStringLiteral("only files matching GLOB (repeatable)"),
                                     QStringLiteral("GLOB"));
    const QCommandLineOption exclude(QStringLiteral("exclude"),
                                     QStringLiteral("leave out files matching GLOB (repeatable)"),
                                     QStringLiteral("GLOB"));
    const QCommandLineOption maxFile(QStringLiteral("max-file-size"),
                                     QStringLiteral("per-file size cap, e.g. 4M (default 4M)"),
                                     QStringLiteral("SIZE"));
    const QCommandLineOption threads(QStringLiteral("threads"),
                                     QStringLiteral("worker threads per source (default: all)"),
                                     QStringLiteral("N"));
    const QCommandLineOption noConvert(QStringLiteral("no-convert-encodings"),
                                       QStringLiteral("skip non-UTF-8 text instead of converting "
                                                      "it from Windows-1252"));
    const QCommandLineOption allSkipped(QStringLiteral("all-skipped"),
                                        QStringLiteral("list every skipped item (text output)"));
    parser.addOptions(
        {json, tokenizerDir, password, include, exclude, maxFile, threads, noConvert, allSkipped});
    QStringList argv = args;
    argv.prepend(QStringLiteral("folio-cli ingest"));
    if (!parser.parse(argv)) {
        std::fprintf(stderr, "folio-cli ingest: %s\n", qPrintable(parser.errorText()));
        return 2;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        std::printf("%s", qPrintable(helpText(parser)));
        return 0;
    }
    const QStringList paths = parser.positionalArguments();
    if (paths.isEmpty()) {
        std::fprintf(stderr, "folio-cli ingest: give at least one PATH\n%s",
                     qPrintable(helpText(parser)));
        return 2;
    }

    ingest::IngestSettings settings;
    for (const QString& g : parser.values(include))
        settings.include.push_back(g.toStdString());
    for (const QString& g : parser.values(exclude))
        settings.exclude.push_back(g.toStdString());
    if (parser.isSet(maxFile)) {
        auto bytes = parseByteSize(parser.value(maxFile));
        if (!bytes) {
            std::fprintf(stderr, "folio-cli ingest: bad --max-file-size '%s'\n",
                         qPrintable(parser.value(maxFile)));
            return 2;
        }
        settings.maxFileBytes = *bytes;
    }
    if (parser.isSet(threads))
        settings.threads = parser.value(threads).toInt();
    settings.convertLegacyEncodings = !parser.isSet(noConvert);
    settings.pdfPassword = parser.value(password).toStdString();

    QString tokenizerPath = parser.value(tokenizerDir);
    if (tokenizerPath.isEmpty())
        tokenizerPath =
            QProcessEnvironment::systemEnvironment().value(QStringLiteral("FOLIO_TOKENIZER_DIR"));
    std::optional<tokenizer::Tokenizer> tokenizer;
    if (!tokenizerPath.isEmpty()) {
        auto loaded = tokenizer::loadKimiTokenizer(tokenizerPath.toStdString());
        if (!loaded) {
            std::fprintf(stderr, "folio-cli ingest: %s\n", loaded.error().message.c_str());
            return 1;
        }
        tokenizer.emplace(std::move(loaded).value());
    } else if (!parser.isSet(json)) {
        std::fprintf(stderr,
                     "folio-cli ingest: tokens not counted (no tokenizer: pass --tokenizer "
                     "MODEL_DIR or set FOLIO_TOKENIZER_DIR)\n");
    }

    const auto start = std::chrono::steady_clock::now();
    std::vector<SourceReport> reports(static_cast<size_t>(paths.size()));
    {
        std::vector<std::thread> workers;
        for (qsizetype i = 0; i < paths.size(); ++i) {
            workers.emplace_back([&, i] {
                SourceReport& r = reports[static_cast<size_t>(i)];
                r.path = paths[i];
                auto document = ingest::ingestSource(paths[i].toStdString(), settings,
                                                     tokenizer ? &*tokenizer : nullptr);
                if (document)
                    r.document = std::move(document).value();
                else
                    r.error = document.error().message;
            });
        }
        for (auto& w : workers)
            w.join();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    int failures = 0;
    int64_t totalTokens = 0;
    for (const auto& r : reports) {
        failures += r.document ? 0 : 1;
        if (r.document && r.document->tokensCounted())
            totalTokens += r.document->tokenCount;
    }
    if (parser.isSet(json)) {
        QJsonArray sources;
        for (const auto& r : reports)
            sources.append(toJson(r));
        QJsonObject root{{QStringLiteral("sources"), sources},
                         {QStringLiteral("seconds"), seconds},
                         {QStringLiteral("failed"), failures}};
        root[QStringLiteral("tokenizer")] = tokenizer ? QJsonValue(tokenizerPath) : QJsonValue();
        root[QStringLiteral("totalTokens")] =
            tokenizer ? QJsonValue(static_cast<qint64>(totalTokens)) : QJsonValue();
        std::printf("%s", QJsonDocument(root).toJson(QJsonDocument::Indented).constData());
    } else {
        for (const auto& r : reports)
            printText(r, parser.isSet(allSkipped) ? -1 : 20);
        std::printf("total: %lld sources (%d failed), %s, %.2f s wall\n",
                    static_cast<long long>(reports.size()), failures,
                    tokenizer ? (grouped(totalTokens) + " tokens").c_str() : "tokens not counted",
                    seconds);
    }
    return failures == 0 ? 0 : 1;
}

}  // namespace folio::cli
