// SPDX-License-Identifier: MIT
// The open workbench document: a model directory's config.json and a stats.h5 file, both loaded
// off the GUI thread (QtConcurrent), plus the selection all views share. Views read the values
// through config()/stats() and redraw on modelChanged()/statsChanged(). The predicted-cost table
// (#27) of the open model and stats is installed by whoever measured it (the application's cost
// job) and dropped whenever the model or the stats change.
#pragma once

#include "moewb/alloc/allocate.h"
#include "moewb/stats/stats.h"
#include "moewb/hfconfig/hf_config.h"

#include <QFutureWatcher>
#include <QObject>
#include <QString>

#include <atomic>
#include <memory>

namespace moewb {

class Selection;

class Document : public QObject {
    Q_OBJECT
public:
    explicit Document(QObject* parent = nullptr);
    ~Document() override; ///< waits for loads still running

    const ModelConfig* config() const { return m_config.get(); } ///< nullptr: no model open
    const CalibStats* stats() const { return m_stats.get(); }    ///< nullptr: no stats open
    /// The budget's error table with the Fisher cost model for the open model and stats (predicted
    /// KL divergence per linear and width); nullptr until one was measured.
    std::shared_ptr<const ErrorTable> costTable() const { return m_costTable; }
    QString modelDir() const { return m_modelDir; }
    QString statsPath() const { return m_statsPath; }
    Selection* selection() const { return m_selection; }
    bool isLoading() const;

    /// Start loading; the result arrives as modelChanged()/statsChanged() or loadFailed(). A newer
    /// request of the same kind supersedes an older one still running.
    void openModel(const QString& dir);
    void openStats(const QString& path);

    /// Stops the stats file being loaded: its result is dropped (whether or not the read had
    /// finished) and loadCancelled() follows instead of statsChanged(); what was open stays.
    void cancelLoading();

    /// Install already loaded values (the asynchronous loads end here; tests use it directly).
    void setModel(std::shared_ptr<const ModelConfig> config, const QString& dir);
    void setStats(std::shared_ptr<const CalibStats> stats, const QString& path);
    /// The cost table measured for the current model and stats (nullptr: none).
    void setCostTable(std::shared_ptr<const ErrorTable> table);
    void closeAll();

    /// One line for the status bar, e.g. "Mixtral, 4 layers, 8 experts top-2 · stats: 8192 tokens, 3 domains".
    QString summary() const;

signals:
    void modelChanged();
    void statsChanged();
    /// costTable() changed (set, or dropped with the model or stats it was measured for).
    void costTableChanged();
    void loadingChanged(bool loading);
    /// Reading a stats file: step done of total (header, each MoE layer, the linears), and what.
    void loadProgress(int done, int total, const QString& what);
    /// The load of path was cancelled (cancelLoading()); nothing changed.
    void loadCancelled(const QString& path);
    /// what: "model" or "stats"; message: the engine's one-line error.
    void loadFailed(const QString& what, const QString& path, const QString& message);

private:
    template <typename T>
    struct Loaded {
        std::shared_ptr<const T> value;
        QString error;
    };
    QFutureWatcher<Loaded<ModelConfig>> m_modelWatcher;
    QFutureWatcher<Loaded<CalibStats>> m_statsWatcher;
    QString m_pendingModelDir;
    QString m_pendingStatsPath;
    /// The cancel flag of the stats load in flight (each load has its own: a newer one supersedes).
    std::shared_ptr<std::atomic<bool>> m_statsCancel;

    std::shared_ptr<const ModelConfig> m_config;
    std::shared_ptr<const CalibStats> m_stats;
    std::shared_ptr<const ErrorTable> m_costTable;
    QString m_modelDir;
    QString m_statsPath;
    Selection* m_selection;
};

} // namespace moewb
