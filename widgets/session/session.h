// SPDX-License-Identifier: MIT
// A workbench session (.moewb, JSON): the model directory, the stats file, the current plan (the
// plan JSON itself, plus the file it came from), the results table and the window layout.
// Reopening a session restores all of them. Format (docs/user-guide.md, "Sessions"):
//   {"format": "moewb-session", "version": 1, "model": DIR, "stats": FILE, "plan": {plan JSON} | null,
//    "plan_path": FILE, "results": [run, ...], "layout": {"geometry": BASE64, "state": BASE64}}
// Relative paths are relative to the session file's directory. Written atomically.
#pragma once

#include "results/runresult.h"

#include <QByteArray>
#include <QString>

#include <vector>

namespace moewb {

constexpr int kSessionFormatVersion = 1;

struct Session {
    QString modelDir;
    QString statsPath;
    QString planJson; ///< canonical plan JSON (planToJson); "" = no plan
    QString planPath; ///< where the plan was last loaded from or saved to
    std::vector<RunResult> results;
    QByteArray windowGeometry; ///< QMainWindow::saveGeometry()
    QByteArray windowState;    ///< QMainWindow::saveState()

    bool operator==(const Session& o) const;
};

/// Atomic (temp file + rename); IoError naming the file when it cannot be written.
void writeSession(const Session& session, const QString& path);
/// InputError "PATH: problem" (not JSON, wrong format or version, a field of the wrong type, an
/// invalid plan); IoError when unreadable. Nothing is returned on error.
Session readSession(const QString& path);
QByteArray sessionToJson(const Session& session);

} // namespace moewb
