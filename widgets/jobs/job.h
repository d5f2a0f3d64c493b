// SPDX-License-Identifier: MIT
// A long engine operation as the GUI runs it: a name, a kind, and a function that does the work on
// a worker thread with a ProgressFn (returning false cancels: the engine throws moewb::Cancelled
// and leaves no output). The widgets never see the engine: app/gui builds the work functions.
#pragma once

#include "moewb/core/progress.h"

#include <QString>
#include <QStringList>

#include <any>
#include <functional>

namespace moewb {

/// What a job hands back when it succeeds.
struct JobResult {
    QString summary;     ///< one line for the log and the panel, e.g. "wrote stats.h5 (4096 tokens)"
    QStringList details; ///< further log lines
    QString outputPath;  ///< the file or directory written, if any
    std::any value;      ///< the job's own result for its onDone callback (a plan, a results row, ...)
};

enum class JobState { Queued, Running, Done, Failed, Cancelled };
QString jobStateName(JobState state); ///< "queued", "running", "done", "failed", "cancelled"

struct Job {
    QString name;       ///< shown in the panel, e.g. "Calibrate moewb-mixtral-8e-v2"
    QString kind;       ///< "calibrate", "strategy", "quantize", "evaluate", "export"
    QString outputPath; ///< what the job will write ("" if nothing): must not exist after a cancel or failure
    /// Runs on a worker thread; throws moewb::Error (or any std::exception) on failure and
    /// moewb::Cancelled when the progress function asked to stop.
    std::function<JobResult(const ProgressFn&)> work;
    /// Runs on the GUI thread after work succeeded (open the stats, set the plan, add a results row).
    std::function<void(const JobResult&)> onDone;
};

} // namespace moewb
