// SPDX-License-Identifier: MIT
// Keeps the document's predicted-cost table (#27) in step with its model and stats: whenever a
// model and statistics with a Fisher diagonal are open it submits costTableJob (enginejobs.h) to
// the job runner (progress and cancel in the Jobs panel), cancels a job whose model or stats were
// replaced meanwhile, and installs the finished table with Document::setCostTable only when the
// document still holds the model and stats it was measured for.
#pragma once

#include <QObject>
#include <QString>

namespace moewb {

class Document;
class JobRunner;

namespace gui {

class CostTableKeeper : public QObject {
    Q_OBJECT
public:
    CostTableKeeper(Document* document, JobRunner* runner, QObject* parent = nullptr);

    /// Measure the table for the open model and stats now (again; a job already measuring them is
    /// kept); returns the job id, or 0 with the reason in lastError() (no model, no stats, stats
    /// without a Fisher diagonal).
    int start();
    int runningJob() const { return m_job; } ///< the job measuring now or queued, 0 when none
    QString lastError() const { return m_lastError; }
    /// Off: no job starts by itself when a model and Fisher stats open (start() still works).
    void setAutomatic(bool automatic) { m_automatic = automatic; }

signals:
    /// A job measuring the open model's and stats' table was submitted (true) or ended (false).
    void measuringChanged(bool measuring);

private:
    void onDocumentChanged();
    void setJob(int id);

    Document* m_document;
    JobRunner* m_runner;
    int m_job = 0;
    quint64 m_generation = 0;    ///< bumped on every model or stats change
    quint64 m_jobGeneration = 0; ///< what m_job measures
    bool m_automatic = true;
    QString m_lastError;
};

} // namespace gui
} // namespace moewb
