// SPDX-License-Identifier: MIT
// The one way small text outputs (plans, error tables, results JSON) reach disk.
#pragma once

#include <string>

namespace moewb {

/// Writes text to path + ".tmp.<pid>", fsyncs it and renames it over path, so a crash or an error
/// leaves either the old file or the complete new one. IoError names the file on failure (the
/// temporary file is removed).
void writeFileAtomically(const std::string& path, const std::string& text);

} // namespace moewb
