// SPDX-License-Identifier: MIT
#include "document.h"

#include "selection.h"

#include "moewb/stats/stats_h5.h"

#include <QPointer>
#include <QtConcurrent/QtConcurrentRun>

#include <exception>
#include <utility>

namespace moewb {

namespace {
// No exception may leave a QtConcurrent task (docs/architecture.md, Conventions): it becomes the message.
QString currentExceptionMessage()
{
    try {
        throw;
    } catch (const std::bad_alloc&) {
        return QStringLiteral("out of memory");
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    } catch (...) {
        return QStringLiteral("unknown error");
    }
}
} // namespace

Document::Document(QObject* parent)
    : QObject(parent)
    , m_selection(new Selection(this))
{
    connect(&m_modelWatcher, &QFutureWatcherBase::finished, this, [this] {
        if (m_modelWatcher.isCanceled())
            return;
        const auto result = m_modelWatcher.result();
        const QString dir = m_pendingModelDir;
        emit loadingChanged(isLoading());
        if (result.value)
            setModel(result.value, dir);
        else
            emit loadFailed(QStringLiteral("model"), dir, result.error);
    });
    connect(&m_statsWatcher, &QFutureWatcherBase::finished, this, [this] {
        if (m_statsWatcher.isCanceled())
            return;
        const auto result = m_statsWatcher.result();
        const QString path = m_pendingStatsPath;
        const bool cancelled = m_statsCancel && m_statsCancel->load();
        m_statsCancel.reset();
        emit loadingChanged(isLoading());
        if (cancelled)
            emit loadCancelled(path);
        else if (result.value)
            setStats(result.value, path);
        else
            emit loadFailed(QStringLiteral("stats"), path, result.error);
    });
}

Document::~Document()
{
    m_modelWatcher.waitForFinished();
    m_statsWatcher.waitForFinished();
}

bool Document::isLoading() const
{
    return m_modelWatcher.isRunning() || m_statsWatcher.isRunning();
}

void Document::openModel(const QString& dir)
{
    // QFutureWatcher::setFuture drops the signals of the future it watched before, so a newer
    // request supersedes a running one (whose result is then discarded).
    m_pendingModelDir = dir;
    const std::string path = dir.toStdString();
    m_modelWatcher.setFuture(QtConcurrent::run([path]() -> Loaded<ModelConfig> {
        try {
            return {std::make_shared<const ModelConfig>(loadConfig(path)), {}};
        } catch (...) {
            return {nullptr, currentExceptionMessage()};
        }
    }));
    emit loadingChanged(true);
}

void Document::openStats(const QString& statsPath)
{
    if (m_statsCancel)
        m_statsCancel->store(true); // the superseded read stops at its next report
    m_pendingStatsPath = statsPath;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    m_statsCancel = cancel;
    const std::string path = statsPath.toStdString();
    // Progress comes back as queued calls: they arrive before the watcher's finished(), and a
    // superseded or cancelled load's reports are dropped by the flag check.
    QPointer<Document> self(this);
    const ProgressFn progress = [self, cancel](const Progress& p) {
        if (cancel->load())
            return false;
        const QString what = QString::fromStdString(p.message);
        const int done = int(p.done), total = int(p.total);
        QMetaObject::invokeMethod(
            self.data(), [self, cancel, done, total, what] {
                if (self && !cancel->load())
                    emit self->loadProgress(done, total, what);
            },
            Qt::QueuedConnection);
        return true;
    };
    m_statsWatcher.setFuture(QtConcurrent::run([path, progress]() -> Loaded<CalibStats> {
        try {
            return {std::make_shared<const CalibStats>(readStats(path, progress)), {}};
        } catch (...) {
            return {nullptr, currentExceptionMessage()};
        }
    }));
    emit loadingChanged(true);
}

void Document::cancelLoading()
{
    if (m_statsCancel)
        m_statsCancel->store(true);
}

void Document::setModel(std::shared_ptr<const ModelConfig> config, const QString& dir)
{
    const std::shared_ptr<const ModelConfig> old = std::exchange(m_config, std::move(config));
    m_modelDir = dir;
    const std::shared_ptr<const ErrorTable> oldTable = std::exchange(m_costTable, nullptr); // measured for the old model
    m_selection->clear();
    emit modelChanged();
    if (oldTable)
        emit costTableChanged();
}

void Document::setStats(std::shared_ptr<const CalibStats> stats, const QString& path)
{
    // Views still hold pointers into the old stats until they handle statsChanged(): keep them
    // alive until then (the selection change below already reaches the views).
    const std::shared_ptr<const CalibStats> old = std::exchange(m_stats, std::move(stats));
    m_statsPath = path;
    const std::shared_ptr<const ErrorTable> oldTable = std::exchange(m_costTable, nullptr); // from the old stats
    m_selection->clear();
    emit statsChanged();
    if (oldTable)
        emit costTableChanged();
}

void Document::setCostTable(std::shared_ptr<const ErrorTable> table)
{
    if (!table && !m_costTable)
        return;
    m_costTable = std::move(table);
    emit costTableChanged();
}

void Document::closeAll()
{
    setModel(nullptr, {});
    setStats(nullptr, {});
}

QString Document::summary() const
{
    QStringList parts;
    if (m_config) {
        const ModelConfig& c = *m_config;
        QString s = QStringLiteral("%1, %2 layers").arg(QString::fromStdString(c.architecture)).arg(c.numLayers);
        if (c.isMoe())
            s += QStringLiteral(", %1 experts top-%2").arg(c.numExperts).arg(c.topK);
        if (c.hasSharedExpert())
            s += QStringLiteral(" + shared");
        parts << s;
    }
    if (m_stats) {
        const StatsProvenance& p = m_stats->provenance;
        QString s = QStringLiteral("stats: %1 tokens").arg(p.numTokens);
        if (!p.domains.empty())
            s += QStringLiteral(", %1 domains").arg(p.domains.size());
        const int64_t dead = m_stats->totalDeadExperts();
        s += QStringLiteral(", %1 dead experts").arg(dead);
        parts << s;
    }
    if (m_config && m_stats
        && (m_stats->numLayers != m_config->numLayers || m_stats->provenance.architecture != m_config->architecture))
        parts << tr("⚠ the stats were computed on a different model (%1, %2 layers)")
                     .arg(QString::fromStdString(m_stats->provenance.architecture))
                     .arg(m_stats->numLayers);
    return parts.isEmpty() ? tr("No model or stats open") : parts.join(QStringLiteral(" · "));
}

} // namespace moewb
