// SPDX-License-Identifier: MIT
// The one way small text outputs (plans, error tables, results JSON) reach disk.
#pragma once

#include <string>

namespace moewb {

/// Writes text to path + ".tmp.<pid>", fsyncs it and renames it over path, so a crash or an error
/// leaves either the old file or the complete new one. IoError names the file on failure (the
/// temporary file is removed).
void writeFileAtomically(const std::string& path, const std::string& text);

/// Removes what runs killed with SIGKILL (or a power cut) left next to path: entries named
/// path + ".tmp.<pid>" (files or directories) whose process no longer exists. Every writer of an
/// output calls it first, so a crash costs at most one temporary until the next run.
void removeStaleTemporaries(const std::string& path);

/// True when a process with this id exists (kill(pid, 0)).
bool processAlive(long pid);

/// The pid in a name of the form prefix + "<digits>"; -1 otherwise.
long pidSuffix(const std::string& name, const std::string& prefix);

} // namespace moewb
