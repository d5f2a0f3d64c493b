// SPDX-License-Identifier: MIT
// Runs Jobs one after another on a worker thread, so the GUI thread never blocks. Progress
// reports travel to the GUI thread as queued signals (at most every 100 ms per job, plus every
// stage change and stage end); cancel(id) makes the job's ProgressFn return false, after which the
// engine throws moewb::Cancelled and removes what it had started writing. Every outcome is a
// signal: finished (with the result, after the job's onDone ran), failed (with the engine's
// one-line message) or cancelled. One job at a time: the engine already uses every core.
#pragma once

#include "jobs/job.h"

#include <QFutureWatcher>
#include <QHash>
#include <QMetaType>
#include <QObject>
#include <QThreadPool>

#include <atomic>
#include <deque>
#include <memory>

namespace moewb {

class JobRunner : public QObject {
    Q_OBJECT
public:
    explicit JobRunner(QObject* parent = nullptr);
    ~JobRunner() override; ///< cancels the running job and waits for it; queued jobs are dropped

    /// Queues the job and returns its id (1, 2, ...); it starts when the jobs before it are done.
    int submit(Job job);
    /// A queued job is dropped at once; a running one stops at its next progress report.
    void cancel(int id);
    void cancelAll();

    bool isBusy() const { return m_running != 0 || !m_queue.empty(); }
    int runningJob() const { return m_running; } ///< 0 when none
    JobState state(int id) const;
    QString jobName(int id) const;
    QString jobKind(int id) const;
    /// The last failure's message ("" when none).
    QString lastError() const { return m_lastError; }

    /// Processes events until no job is queued or running; false on timeout (batch mode, tests).
    bool waitForIdle(int timeoutMs);

signals:
    void submitted(int id, const QString& name, const QString& kind);
    void started(int id);
    /// total 0: unknown; etaSeconds −1: unknown.
    void progress(int id, const QString& stage, qint64 done, qint64 total, const QString& message, double etaSeconds);
    void finished(int id, const moewb::JobResult& result);
    void failed(int id, const QString& message);
    void cancelled(int id);
    void stateChanged(int id, moewb::JobState state);
    /// A line for the log view (stage changes, outcome, the job's details).
    void logMessage(int id, const QString& line);
    void idle();

private:
    struct Outcome {
        JobState state = JobState::Done;
        JobResult result;
        QString error;
    };
    struct Entry {
        Job job;
        JobState state = JobState::Queued;
        std::shared_ptr<std::atomic<bool>> cancelFlag = std::make_shared<std::atomic<bool>>(false);
    };
    void startNext();
    void onWorkerFinished();
    void setState(int id, JobState state);
    ProgressFn makeProgress(int id, const std::shared_ptr<std::atomic<bool>>& cancelFlag);

    QThreadPool m_pool;
    QFutureWatcher<Outcome> m_watcher;
    QHash<int, Entry> m_jobs;
    std::deque<int> m_queue;
    int m_running = 0;
    int m_nextId = 1;
    QString m_lastError;
};

} // namespace moewb

Q_DECLARE_METATYPE(moewb::JobResult)
Q_DECLARE_METATYPE(moewb::JobState)
