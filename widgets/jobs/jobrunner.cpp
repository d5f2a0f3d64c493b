// SPDX-License-Identifier: MIT
#include "jobs/jobrunner.h"

#include "jobs/eta.h"

#include "moewb/core/error.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QPointer>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <new>

namespace moewb {

QString jobStateName(JobState state)
{
    switch (state) {
    case JobState::Queued:
        return QStringLiteral("queued");
    case JobState::Running:
        return QStringLiteral("running");
    case JobState::Done:
        return QStringLiteral("done");
    case JobState::Failed:
        return QStringLiteral("failed");
    case JobState::Cancelled:
        return QStringLiteral("cancelled");
    }
    return {};
}

JobRunner::JobRunner(QObject* parent)
    : QObject(parent)
{
    qRegisterMetaType<moewb::JobResult>();
    qRegisterMetaType<moewb::JobState>();
    m_pool.setMaxThreadCount(1);
    // One long-lived worker: per-thread runtime settings made by the first job (libtorch's OpenMP
    // thread count, set once by the engine's initRuntime) hold for every later job.
    m_pool.setExpiryTimeout(-1);
    connect(&m_watcher, &QFutureWatcherBase::finished, this, &JobRunner::onWorkerFinished);
}

JobRunner::~JobRunner()
{
    m_queue.clear();
    for (Entry& e : m_jobs)
        e.cancelFlag->store(true);
    m_watcher.waitForFinished();
    m_pool.waitForDone();
}

int JobRunner::submit(Job job)
{
    const int id = m_nextId++;
    Entry entry;
    entry.job = std::move(job);
    const QString name = entry.job.name, kind = entry.job.kind;
    m_jobs.insert(id, std::move(entry));
    m_queue.push_back(id);
    emit submitted(id, name, kind);
    emit logMessage(id, tr("queued: %1").arg(name));
    if (m_running == 0)
        startNext();
    return id;
}

void JobRunner::cancel(int id)
{
    auto it = m_jobs.find(id);
    if (it == m_jobs.end())
        return;
    if (it->state == JobState::Queued) {
        m_queue.erase(std::remove(m_queue.begin(), m_queue.end(), id), m_queue.end());
        setState(id, JobState::Cancelled);
        emit logMessage(id, tr("cancelled before it started"));
        emit cancelled(id);
        if (!isBusy())
            emit idle();
    } else if (it->state == JobState::Running && !it->cancelFlag->exchange(true)) {
        emit logMessage(id, tr("cancelling…"));
    }
}

void JobRunner::cancelAll()
{
    const std::deque<int> queued = m_queue;
    for (int id : queued)
        cancel(id);
    if (m_running)
        cancel(m_running);
}

JobState JobRunner::state(int id) const
{
    const auto it = m_jobs.constFind(id);
    return it == m_jobs.cend() ? JobState::Cancelled : it->state;
}

QString JobRunner::jobName(int id) const
{
    const auto it = m_jobs.constFind(id);
    return it == m_jobs.cend() ? QString() : it->job.name;
}

QString JobRunner::jobKind(int id) const
{
    const auto it = m_jobs.constFind(id);
    return it == m_jobs.cend() ? QString() : it->job.kind;
}

bool JobRunner::waitForIdle(int timeoutMs)
{
    QElapsedTimer timer;
    timer.start();
    while (isBusy() && timer.elapsed() < timeoutMs)
        QCoreApplication::processEvents(QEventLoop::AllEvents | QEventLoop::WaitForMoreEvents, 50);
    QCoreApplication::processEvents();
    return !isBusy();
}

void JobRunner::setState(int id, JobState state)
{
    m_jobs[id].state = state;
    emit stateChanged(id, state);
}

ProgressFn JobRunner::makeProgress(int id, const std::shared_ptr<std::atomic<bool>>& cancelFlag)
{
    // Called on the worker thread only; the throttle state lives in the closure.
    struct Throttle {
        QElapsedTimer clock;
        qint64 lastPost = -1000;
        std::string stage;
        EtaEstimator eta;
    };
    auto t = std::make_shared<Throttle>();
    t->clock.start();
    QPointer<JobRunner> self(this);
    return [self, id, cancelFlag, t](const Progress& p) -> bool {
        if (cancelFlag->load())
            return false;
        const qint64 now = t->clock.elapsed();
        const double eta = t->eta.update(p.stage, p.done, p.total, double(now) / 1000.0);
        const bool newStage = p.stage != t->stage;
        const bool stageEnd = p.total > 0 && p.done >= p.total;
        if (newStage || stageEnd || now - t->lastPost >= 100) {
            t->lastPost = now;
            t->stage = p.stage;
            const QString stage = QString::fromStdString(p.stage), message = QString::fromStdString(p.message);
            const qint64 done = p.done, total = p.total;
            QMetaObject::invokeMethod(
                self.data(),
                [self, id, stage, done, total, message, eta, newStage] {
                    if (!self || self->state(id) != JobState::Running)
                        return;
                    if (newStage)
                        emit self->logMessage(id, tr("stage: %1").arg(stage));
                    emit self->progress(id, stage, done, total, message, eta);
                },
                Qt::QueuedConnection);
        }
        return !cancelFlag->load();
    };
}

void JobRunner::startNext()
{
    if (m_running != 0 || m_queue.empty()) {
        if (m_running == 0)
            emit idle();
        return;
    }
    const int id = m_queue.front();
    m_queue.pop_front();
    m_running = id;
    Entry& entry = m_jobs[id];
    setState(id, JobState::Running);
    emit started(id);
    emit logMessage(id, tr("started: %1").arg(entry.job.name));
    const auto work = entry.job.work;
    const ProgressFn progress = makeProgress(id, entry.cancelFlag);
    // No exception may leave the task: each becomes the outcome.
    m_watcher.setFuture(QtConcurrent::run(&m_pool, [work, progress]() -> Outcome {
        Outcome o;
        try {
            if (!work)
                throw Error("job has nothing to do");
            o.result = work(progress);
        } catch (const Cancelled&) {
            o.state = JobState::Cancelled;
        } catch (const std::bad_alloc&) {
            o.state = JobState::Failed;
            o.error = QStringLiteral("out of memory");
        } catch (const std::exception& e) {
            o.state = JobState::Failed;
            o.error = QString::fromStdString(e.what());
        } catch (...) {
            o.state = JobState::Failed;
            o.error = QStringLiteral("unknown error");
        }
        return o;
    }));
}

void JobRunner::onWorkerFinished()
{
    const int id = m_running;
    Outcome o = m_watcher.result();
    Entry& entry = m_jobs[id];
    if (o.state == JobState::Done && entry.job.onDone) {
        // A failing onDone (e.g. the produced plan does not fit the open model) fails the job.
        try {
            entry.job.onDone(o.result);
        } catch (const std::exception& e) {
            o.state = JobState::Failed;
            o.error = QString::fromStdString(e.what());
        }
    }
    m_running = 0;
    setState(id, o.state);
    switch (o.state) {
    case JobState::Done:
        emit logMessage(id, tr("done: %1").arg(o.result.summary));
        for (const QString& line : o.result.details)
            emit logMessage(id, QStringLiteral("  ") + line);
        emit finished(id, o.result);
        break;
    case JobState::Failed:
        m_lastError = o.error;
        emit logMessage(id, tr("error: %1").arg(o.error));
        emit failed(id, o.error);
        break;
    default:
        emit logMessage(id, tr("cancelled; nothing was written"));
        emit cancelled(id);
        break;
    }
    startNext();
}

} // namespace moewb
