// SPDX-License-Identifier: MIT
// Autosave of the current plan with crash recovery. Each running workbench owns two files in the
// autosave directory (QStandardPaths::AppDataLocation/autosave by default):
//   running-<pid>  the marker, written by begin() and removed by finish() on a clean close;
//   plan-<pid>.json  {"model": DIR, "saved": ISO time, "plan": {plan JSON}}, rewritten (atomically)
//                    a moment after every plan change.
// A marker whose process is gone means that workbench did not close cleanly: its plan file is
// offered for recovery at the next start (the newest one when several crashed).
#pragma once

#include <QDateTime>
#include <QObject>
#include <QString>
#include <QTimer>

#include <optional>

namespace moewb {

struct AutosaveRecovery {
    QString file;     ///< the plan-<pid>.json to recover from
    QString modelDir; ///< the model the plan was made for
    QString planJson; ///< the plan
    QDateTime saved;
};

class PlanAutosave : public QObject {
    Q_OBJECT
public:
    /// dir "" = QStandardPaths::AppDataLocation + "/autosave".
    explicit PlanAutosave(const QString& dir = {}, QObject* parent = nullptr);
    ~PlanAutosave() override;

    QString directory() const { return m_dir; }
    QString planFile() const;
    QString markerFile() const;
    /// Debounce between a plan change and the write (ms).
    void setDelay(int ms) { m_timer.setInterval(ms); }

    /// The newest plan left behind by a workbench that did not close cleanly (call before begin()).
    std::optional<AutosaveRecovery> pendingRecovery() const;
    /// Removes what crashed workbenches left behind (after recovering or declining).
    void discardRecovery();

    /// Writes this process's marker.
    void begin();
    /// Remembers the plan and writes it after the delay; an empty planJson removes the autosave.
    void schedule(const QString& planJson, const QString& modelDir);
    /// Writes a pending change now.
    void flush();
    /// Clean close: removes the marker and the autosave.
    void finish();

signals:
    void saveFailed(const QString& message);

private:
    void write();

    QString m_dir;
    QTimer m_timer;
    QString m_planJson;
    QString m_modelDir;
    bool m_dirty = false;
    bool m_begun = false;
};

} // namespace moewb
