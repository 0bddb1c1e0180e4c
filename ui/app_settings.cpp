// SPDX-License-Identifier: GPL-3.0-or-later
#include "app_settings.h"

#include <QDir>
#include <QStandardPaths>

#include "demo_content.h"

namespace folio::ui {

AppSettings AppSettings::load(QSettings& s) {
    AppSettings a;
    a.dataDir = s.value("paths/dataDir").toString();
    a.modelDir = s.value("model/folder").toString();
    a.useDemoModel = s.value("model/demo", false).toBool();
    a.useCuda = s.value("engine/cuda", false).toBool();
    a.cudaDevice = s.value("engine/cudaDevice", 0).toInt();
    a.cpuThreads = s.value("engine/cpuThreads", 0).toInt();
    a.temperature = s.value("sampling/temperature", 0.0).toDouble();
    a.topK = s.value("sampling/topK", 0).toInt();
    a.topP = s.value("sampling/topP", 1.0).toDouble();
    a.repetitionPenalty = s.value("sampling/repetitionPenalty", 1.0).toDouble();
    a.seed = s.value("sampling/seed", 0).toLongLong();
    a.maxAnswerTokens = s.value("sampling/maxTokens", 512).toInt();
    a.diskBudgetGiB = s.value("snapshots/diskBudgetGiB", 64).toInt();
    return a;
}

void AppSettings::save(QSettings& s) const {
    s.setValue("paths/dataDir", dataDir);
    s.setValue("model/folder", modelDir);
    s.setValue("model/demo", useDemoModel);
    s.setValue("engine/cuda", useCuda);
    s.setValue("engine/cudaDevice", cudaDevice);
    s.setValue("engine/cpuThreads", cpuThreads);
    s.setValue("sampling/temperature", temperature);
    s.setValue("sampling/topK", topK);
    s.setValue("sampling/topP", topP);
    s.setValue("sampling/repetitionPenalty", repetitionPenalty);
    s.setValue("sampling/seed", seed);
    s.setValue("sampling/maxTokens", maxAnswerTokens);
    s.setValue("snapshots/diskBudgetGiB", diskBudgetGiB);
}

QString AppSettings::effectiveDataDir() const {
    return dataDir.isEmpty() ? defaultDataDir() : dataDir;
}

LaunchOptions AppSettings::launchOptions() const {
    LaunchOptions o;
    o.dataDir = effectiveDataDir();
    o.demoModel = useDemoModel;
    o.modelDir = useDemoModel ? demoModelDirIn(o.dataDir) : modelDir;
    o.demoCorpusDir = useDemoModel ? bundledDemoCorpusDir() : QString();
    o.engine.backend = useCuda ? inference::BackendKind::Cuda : inference::BackendKind::Cpu;
    o.engine.cudaDevice = cudaDevice;
    o.engine.threads = cpuThreads;
    o.diskBudgetBytes = int64_t{diskBudgetGiB} << 30;
    o.generation.maxTokens = maxAnswerTokens;
    o.generation.sampling.temperature = static_cast<float>(temperature);
    o.generation.sampling.topK = topK;
    o.generation.sampling.topP = static_cast<float>(topP);
    o.generation.sampling.repetitionPenalty = static_cast<float>(repetitionPenalty);
    o.generation.sampling.seed = static_cast<uint64_t>(seed);
    return o;
}

QString defaultDataDir() {
    if (const QByteArray env = qgetenv("FOLIO_DATA_DIR"); !env.isEmpty())
        return QString::fromLocal8Bit(env);
    return QDir(QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation))
        .filePath(QStringLiteral("folio"));
}

}  // namespace folio::ui
