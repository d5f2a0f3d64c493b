// SPDX-License-Identifier: MIT
// The job machinery without the engine: jobs that report progress through a ProgressFn the way
// the engine does (moewb::report), on the runner's worker thread. Progress reaches the panel
// (stage, percentage, ETA), cancel stops a running job at its next report and drops a queued one,
// a failure shows its one-line message in the panel and the log, the GUI thread keeps processing
// events while a job runs, and the ETA estimate follows the rate of its stage.
#include "jobs/eta.h"
#include "jobs/jobrunner.h"
#include "jobs/jobspanel.h"

#include "moewb/core/error.h"

#include <QApplication>
#include <QSignalSpy>
#include <QTest>
#include <QTimer>
#include <QToolButton>
#include <QTreeWidget>

#include <atomic>
#include <chrono>
#include <thread>

using namespace moewb;

namespace {
// Reports `steps` steps of one stage, sleeping between them; returns normally at the end. With
// `hold`, waits after the report of step 2 until *hold is false.
Job steppingJob(const QString& name, int steps, int sleepMs, std::atomic<int>* reached = nullptr,
                std::atomic<bool>* hold = nullptr)
{
    Job job;
    job.name = name;
    job.kind = QStringLiteral("test");
    job.work = [steps, sleepMs, reached, hold](const ProgressFn& progress) {
        for (int i = 0; i <= steps; ++i) {
            report(progress, "work", i, steps, "step " + std::to_string(i));
            if (reached)
                reached->store(i);
            while (hold && i == 2 && hold->load())
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            std::this_thread::sleep_for(std::chrono::milliseconds(sleepMs));
        }
        JobResult r;
        r.summary = QStringLiteral("%1 steps").arg(steps);
        r.value = steps;
        return r;
    };
    return job;
}
} // namespace

class TestJobs : public QObject {
    Q_OBJECT
private slots:
    void progressReachesPanel();
    void cancelRunningJob();
    void cancelQueuedJob();
    void failureIsShown();
    void eventLoopKeepsRunning();
    void onDoneRunsOnGuiThread();
    void etaEstimate();
};

void TestJobs::progressReachesPanel()
{
    JobRunner runner;
    JobsPanel panel(&runner);
    QSignalSpy progress(&runner, &JobRunner::progress);
    QSignalSpy finished(&runner, &JobRunner::finished);
    std::atomic<bool> hold{true};
    const int id = runner.submit(steppingJob(QStringLiteral("count"), 4, 120, nullptr, &hold));
    QCOMPARE(id, 1);
    QCOMPARE(panel.stateText(id), QStringLiteral("running"));
    // Held after step 2: the panel shows the stage, done/total and the percentage of that report.
    QTRY_VERIFY_WITH_TIMEOUT(progress.size() >= 3, 10000);
    const QList<QVariant> last = progress.last();
    QCOMPARE(last.at(1).toString(), QStringLiteral("work"));
    QCOMPARE(last.at(2).toLongLong(), qint64(2));
    QCOMPARE(last.at(3).toLongLong(), qint64(4));
    QCOMPARE(panel.percent(id), 50);
    QCOMPARE(panel.stageText(id), QStringLiteral("work 2/4 — step 2"));
    QVERIFY2(panel.etaText(id).endsWith(QStringLiteral(" s")), qPrintable(panel.etaText(id))); // a rate is known
    QCOMPARE(panel.stateText(id), QStringLiteral("running"));
    hold.store(false);
    QVERIFY(runner.waitForIdle(10000));
    QCOMPARE(finished.size(), 1);
    QCOMPARE(finished.first().at(0).toInt(), id);
    const JobResult result = finished.first().at(1).value<JobResult>();
    QCOMPARE(result.summary, QStringLiteral("4 steps"));
    QCOMPARE(std::any_cast<int>(result.value), 4);
    QCOMPARE(panel.stateText(id), QStringLiteral("done"));
    QCOMPARE(panel.percent(id), 100);
    QVERIFY(!panel.cancelButton(id)->isEnabled());
    QVERIFY(panel.logText().contains(QStringLiteral("done: 4 steps")));
    QVERIFY(panel.logText().contains(QStringLiteral("stage: work")));
}

void TestJobs::cancelRunningJob()
{
    JobRunner runner;
    JobsPanel panel(&runner);
    std::atomic<int> reached{-1};
    QSignalSpy cancelled(&runner, &JobRunner::cancelled);
    QSignalSpy finished(&runner, &JobRunner::finished);
    const int id = runner.submit(steppingJob(QStringLiteral("long"), 1000, 20, &reached));
    QSignalSpy progress(&runner, &JobRunner::progress);
    QVERIFY(progress.wait(10000));
    panel.cancelButton(id)->click(); // as the user does
    QVERIFY(runner.waitForIdle(10000));
    QCOMPARE(cancelled.size(), 1);
    QCOMPARE(finished.size(), 0);
    QCOMPARE(runner.state(id), JobState::Cancelled);
    QCOMPARE(panel.stateText(id), QStringLiteral("cancelled"));
    QVERIFY2(reached.load() < 1000, "the job ran to its end");
    QVERIFY(panel.logText().contains(QStringLiteral("cancelled; nothing was written")));
}

void TestJobs::cancelQueuedJob()
{
    JobRunner runner;
    JobsPanel panel(&runner);
    QSignalSpy finished(&runner, &JobRunner::finished);
    QSignalSpy cancelled(&runner, &JobRunner::cancelled);
    const int first = runner.submit(steppingJob(QStringLiteral("first"), 3, 30));
    const int second = runner.submit(steppingJob(QStringLiteral("second"), 3, 30));
    const int third = runner.submit(steppingJob(QStringLiteral("third"), 3, 30));
    QCOMPARE(panel.stateText(second), QStringLiteral("queued"));
    runner.cancel(second);
    QCOMPARE(panel.stateText(second), QStringLiteral("cancelled"));
    QVERIFY(runner.waitForIdle(10000));
    QCOMPARE(cancelled.size(), 1);
    QCOMPARE(finished.size(), 2); // in submission order
    QCOMPARE(finished.at(0).at(0).toInt(), first);
    QCOMPARE(finished.at(1).at(0).toInt(), third);
    panel.clearFinished();
    QCOMPARE(panel.jobList()->topLevelItemCount(), 0);
}

void TestJobs::failureIsShown()
{
    JobRunner runner;
    JobsPanel panel(&runner);
    QSignalSpy failed(&runner, &JobRunner::failed);
    Job job;
    job.name = QStringLiteral("broken");
    job.kind = QStringLiteral("test");
    bool onDoneRan = false;
    job.onDone = [&onDoneRan](const JobResult&) { onDoneRan = true; };
    job.work = [](const ProgressFn& progress) -> JobResult {
        report(progress, "load", 0, 1);
        throw InputError("/models/x/config.json", "no such file");
    };
    const int id = runner.submit(job);
    QVERIFY(runner.waitForIdle(10000));
    QCOMPARE(failed.size(), 1);
    const QString message = QStringLiteral("/models/x/config.json: no such file");
    QCOMPARE(failed.first().at(1).toString(), message);
    QCOMPARE(runner.lastError(), message);
    QCOMPARE(panel.stateText(id), QStringLiteral("failed"));
    QCOMPARE(panel.stageText(id), message);
    QVERIFY(panel.logText().contains(QStringLiteral("error: ") + message));
    QVERIFY(!onDoneRan);

    // A failing onDone (e.g. a plan that does not fit the open model) fails the job too.
    Job late = steppingJob(QStringLiteral("late"), 1, 1);
    late.onDone = [](const JobResult&) { throw InputError("plan", "does not fit"); };
    const int lateId = runner.submit(late);
    QVERIFY(runner.waitForIdle(10000));
    QCOMPARE(panel.stateText(lateId), QStringLiteral("failed"));
    QCOMPARE(failed.last().at(1).toString(), QStringLiteral("plan: does not fit"));
}

void TestJobs::eventLoopKeepsRunning()
{
    // While a job computes for ~1 s the GUI thread keeps dispatching timer events.
    JobRunner runner;
    int ticks = 0;
    QTimer timer;
    timer.setInterval(20);
    connect(&timer, &QTimer::timeout, [&ticks] { ++ticks; });
    std::atomic<int> ticksSeenByJob{0};
    Job job;
    job.name = QStringLiteral("busy");
    job.work = [&](const ProgressFn& progress) {
        // Busy until the GUI thread has ticked 10 times: never returns if the loop is blocked
        // (bounded by a generous limit so a broken runner fails instead of hanging).
        const auto t0 = std::chrono::steady_clock::now();
        while (ticksSeenByJob.load() < 10 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
            report(progress, "spin", 0, 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return JobResult{};
    };
    connect(&timer, &QTimer::timeout, [&] { ticksSeenByJob.store(ticks); });
    timer.start();
    runner.submit(job);
    QVERIFY(runner.isBusy());
    QVERIFY(runner.waitForIdle(30000));
    QVERIFY2(ticksSeenByJob.load() >= 10, "the GUI thread did not run while the job did");
    QCOMPARE(runner.state(1), JobState::Done);
}

void TestJobs::onDoneRunsOnGuiThread()
{
    JobRunner runner;
    QThread* doneThread = nullptr;
    QThread* workThread = nullptr;
    Job job = steppingJob(QStringLiteral("t"), 1, 1);
    auto work = job.work;
    job.work = [&workThread, work](const ProgressFn& p) {
        workThread = QThread::currentThread();
        return work(p);
    };
    job.onDone = [&doneThread](const JobResult&) { doneThread = QThread::currentThread(); };
    runner.submit(job);
    QVERIFY(runner.waitForIdle(10000));
    QCOMPARE(doneThread, QThread::currentThread());
    QVERIFY(workThread && workThread != QThread::currentThread());
}

void TestJobs::etaEstimate()
{
    EtaEstimator eta;
    QCOMPARE(eta.update("a", 0, 100, 10.0), -1.0);      // nothing done yet
    QCOMPARE(eta.update("a", 25, 100, 12.0), 6.0);      // 25 in 2 s → 75 in 6 s
    QCOMPARE(eta.update("a", 50, 100, 14.0), 4.0);      // 50 in 4 s → 50 in 4 s
    QCOMPARE(eta.update("b", 10, 40, 20.0), -1.0);      // a new stage starts over
    QCOMPARE(eta.update("b", 20, 40, 21.0), 2.0);       // 10 in 1 s → 20 in 2 s
    QCOMPARE(eta.update("b", 5, 0, 22.0), -1.0);        // unknown total
    QCOMPARE(formatEta(-1), QString());
    QCOMPARE(formatEta(4.4), QStringLiteral("4 s"));
    QCOMPARE(formatEta(185), QStringLiteral("3 min 05 s"));
    QCOMPARE(formatEta(3720), QStringLiteral("1 h 02 min"));
}

QTEST_MAIN(TestJobs)
#include "tst_jobs.moc"
