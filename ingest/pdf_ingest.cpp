// SPDX-License-Identifier: GPL-3.0-or-later
#include "pdf_ingest.h"

#include <poppler-qt6.h>

#include <QFile>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>

#include "content_hasher.h"
#include "inference/tokenizer/parallel_for.h"
#include "pdf_page_text.h"

namespace folio::ingest {

namespace {

struct PageResult {
    PageText text;
    bool readable = true;
};

void silencePopplerMessages() {
    static std::once_flag once;
    std::call_once(once, [] {
        Poppler::setDebugErrorFunction([](const QString&, const QVariant&) {}, QVariant());
    });
}

QString qtPath(const std::filesystem::path& path) {
    return QString::fromStdString(path.string());
}

struct OpenedPdf {
    std::unique_ptr<Poppler::Document> document;  // null unless access == Open
    PdfAccess access = PdfAccess::Open;
};

// Opens the file; a locked file is not an error here, it comes back with its access state.
Result<OpenedPdf> openPdfChecked(const std::filesystem::path& path, const std::string& password) {
    silencePopplerMessages();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return makeError(ErrorCode::NotFound, path.string(), ": no such file");
    const QByteArray secret = QByteArray::fromStdString(password);
    OpenedPdf opened;
    opened.document = Poppler::Document::load(qtPath(path), secret, secret);
    if (!opened.document)
        return makeError(ErrorCode::Format, path.string(),
                         ": cannot be opened as a PDF (the file is damaged or not a PDF)");
    if (opened.document->isLocked()) {
        opened.document.reset();
        opened.access = password.empty() ? PdfAccess::NeedsPassword : PdfAccess::WrongPassword;
    }
    return opened;
}

Result<std::unique_ptr<Poppler::Document>> openPdf(const std::filesystem::path& path,
                                                   const std::string& password) {
    FOLIO_ASSIGN_OR_RETURN(OpenedPdf opened, openPdfChecked(path, password));
    switch (opened.access) {
        case PdfAccess::Open:
            return std::move(opened.document);
        case PdfAccess::NeedsPassword:
            return makeError(ErrorCode::InvalidArgument, path.string(),
                             ": the PDF is encrypted; a password is needed to read it");
        case PdfAccess::WrongPassword:
            break;
    }
    return makeError(ErrorCode::InvalidArgument, path.string(),
                     ": wrong password for the encrypted PDF");
}

// Poppler writes "%%EOF" at the end of every complete file (incremental updates add more).
bool hasEndOfFileMarker(const std::filesystem::path& path) {
    QFile file(qtPath(path));
    if (!file.open(QIODevice::ReadOnly))
        return false;
    const qint64 tail = std::min<qint64>(file.size(), 2048);
    file.seek(file.size() - tail);
    return file.read(tail).contains("%%EOF");
}

std::vector<PdfWord> wordsOf(const Poppler::Page& page) {
    std::vector<PdfWord> words;
    const auto boxes = page.textList();
    words.reserve(boxes.size());
    for (const auto& box : boxes) {
        words.push_back(
            {box->text(), box->boundingBox(), box->hasSpaceAfter(), box->nextWord() == nullptr});
    }
    return words;
}

void readPages(Poppler::Document& document, std::atomic<int>& nextPage, int pageCount,
               std::vector<PageResult>& results, std::atomic<int>& done,
               const PageProgress& progress) {
    for (int index = nextPage++; index < pageCount; index = nextPage++) {
        std::unique_ptr<Poppler::Page> page = document.page(index);
        PageResult& result = results[static_cast<size_t>(index)];
        if (!page) {
            result.readable = false;
        } else {
            result.text = buildPageText(wordsOf(*page));
        }
        const int finished = ++done;
        if (progress)
            progress(finished, pageCount);
    }
}

}  // namespace

Result<PdfAccess> checkPdfAccess(const std::filesystem::path& path, const std::string& password) {
    FOLIO_ASSIGN_OR_RETURN(OpenedPdf opened, openPdfChecked(path, password));
    return opened.access;
}

Result<Document> ingestPdf(const std::filesystem::path& path, const IngestSettings& settings,
                           const PageProgress& progress) {
    FOLIO_ASSIGN_OR_RETURN(std::unique_ptr<Poppler::Document> first,
                           openPdf(path, settings.pdfPassword));
    const int pageCount = first->numPages();
    if (pageCount <= 0)
        return makeError(ErrorCode::Format, path.string(),
                         ": no page could be read (the file is damaged)");

    Document document;
    document.kind = SourceKind::Pdf;
    document.name = path.filename().string();
    document.originPath = std::filesystem::absolute(path).lexically_normal().string();
    document.title = first->info(QStringLiteral("Title")).trimmed().toStdString();
    document.pageCount = pageCount;

    // Extra workers open their own Document (Poppler documents are not shared across threads).
    const int workers =
        std::clamp(tokenizer::resolveThreadCount(settings.threads), 1, std::max(1, pageCount / 2));
    std::vector<PageResult> pages(static_cast<size_t>(pageCount));
    std::atomic<int> nextPage{0}, done{0};
    tokenizer::parallelFor(static_cast<size_t>(workers), workers, [&](size_t worker) {
        if (worker == 0) {
            readPages(*first, nextPage, pageCount, pages, done, progress);
            return;
        }
        auto own = openPdf(path, settings.pdfPassword);
        if (!own)
            return;  // worker 0 still reads every page
        readPages(**own, nextPage, pageCount, pages, done, progress);
    });

    int withoutText = 0, unreadable = 0;
    for (int index = 0; index < pageCount; ++index) {
        const int number = index + 1;
        PageResult& page = pages[static_cast<size_t>(index)];
        Segment segment;
        segment.locator = Locator::forPage(number);
        segment.textBegin = document.text.size();
        document.text += cat("<page n=\"", number, "\">\n");
        const bool hasText = page.readable && !page.text.text.empty();
        if (!page.readable) {
            ++unreadable;
            document.text += "(this page could not be read)\n";
            document.skipped.push_back({cat("page ", number), "page could not be read (damaged)"});
        } else if (!hasText) {
            ++withoutText;
            document.text += "(no text layer on this page: image-only or blank)\n";
            document.skipped.push_back(
                {cat("page ", number), "no text layer (image-only or blank page)"});
        } else {
            const auto base = static_cast<uint32_t>(document.text.size());
            for (WordBox& w : page.text.words)
                w.textBegin += base;
            segment.words = std::move(page.text.words);
            document.text += page.text.text;
        }
        segment.hasTextLayer = hasText;
        document.text += "</page>\n";
        segment.textEnd = document.text.size();
        document.segments.push_back(std::move(segment));
        page = {};
    }
    if (withoutText > 0)
        document.warnings.push_back(cat(withoutText, " of ", pageCount,
                                        " pages have no text layer (image-only or blank); "
                                        "their content is not in the text"));
    if (unreadable > 0)
        document.warnings.push_back(cat(unreadable, " of ", pageCount, " pages could not be read"));
    if (!hasEndOfFileMarker(path))
        document.warnings.push_back(
            cat("the file looks truncated or damaged (no end-of-file marker); ",
                pageCount - unreadable - withoutText, " of ", pageCount,
                " pages gave text and are included"));

    ContentHasher hasher;
    hasher.addField(settings.fingerprint());
    hasher.addField("pdf");
    FOLIO_TRY(hasher.addFile(path));
    document.contentHash = hasher.hexDigest();
    return document;
}

}  // namespace folio::ingest
