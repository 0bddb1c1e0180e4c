// SPDX-License-Identifier: GPL-3.0-or-later
#include "content_hasher.h"

#include <QFile>

namespace folio::ingest {

ContentHasher::ContentHasher() : hash_(QCryptographicHash::Sha256) {}

void ContentHasher::addField(std::string_view bytes) {
    const QByteArray length = QByteArray::number(static_cast<qulonglong>(bytes.size())) + ':';
    hash_.addData(length);
    hash_.addData(QByteArrayView(bytes.data(), static_cast<qsizetype>(bytes.size())));
}

Status ContentHasher::addFile(const std::filesystem::path& path) {
    QFile file(QString::fromStdString(path.string()));
    if (!file.open(QIODevice::ReadOnly))
        return makeError(ErrorCode::Io, path.string(),
                         ": cannot read: ", file.errorString().toStdString());
    hash_.addData(QByteArray::number(static_cast<qulonglong>(file.size())) + ':');
    QByteArray buffer;
    while (!file.atEnd()) {
        buffer = file.read(qint64{1} << 20);
        if (buffer.isEmpty() && file.error() != QFileDevice::NoError)
            return makeError(ErrorCode::Io, path.string(),
                             ": read failed: ", file.errorString().toStdString());
        hash_.addData(buffer);
    }
    return {};
}

std::string ContentHasher::hexDigest() const {
    return hash_.result().toHex().toStdString();
}

}  // namespace folio::ingest
