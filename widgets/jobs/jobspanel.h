// SPDX-License-Identifier: MIT
// The Jobs dock: one row per job (name, state, stage and message, progress bar with percentage,
// ETA, a cancel button) above a log of everything the runner reported (stage changes, outcomes,
// the engine's error messages). Everything it shows comes from the JobRunner's signals.
#pragma once

#include "jobs/job.h"

#include <QHash>
#include <QWidget>

class QPlainTextEdit;
class QProgressBar;
class QToolButton;
class QTreeWidget;
class QTreeWidgetItem;

namespace moewb {

class JobRunner;

class JobsPanel : public QWidget {
    Q_OBJECT
public:
    enum Column { NameColumn, StateColumn, StageColumn, ProgressColumn, EtaColumn, CancelColumn, ColumnCount };

    explicit JobsPanel(JobRunner* runner, QWidget* parent = nullptr);
    ~JobsPanel() override;

    // What a row shows (tests, screenshots).
    QString stateText(int id) const;
    QString stageText(int id) const;
    QString etaText(int id) const;
    int percent(int id) const; ///< −1 while the total is unknown
    QToolButton* cancelButton(int id) const;
    QString logText() const;
    QTreeWidget* jobList() const { return m_list; }

public slots:
    void clearFinished();

private:
    void onSubmitted(int id, const QString& name, const QString& kind);
    void onProgress(int id, const QString& stage, qint64 done, qint64 total, const QString& message, double eta);
    void onStateChanged(int id, JobState state);
    void onFailed(int id, const QString& message);
    void appendLog(int id, const QString& line);
    QProgressBar* bar(int id) const;

    JobRunner* m_runner;
    QTreeWidget* m_list;
    QPlainTextEdit* m_log;
    QHash<int, QTreeWidgetItem*> m_items;
};

} // namespace moewb
