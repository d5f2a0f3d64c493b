// SPDX-License-Identifier: MIT
// Reading a whole file into memory with an error that says why it failed: "no such file or
// directory" and "permission denied" are different problems for the person who has to fix them.
#pragma once

#include <string>

namespace moewb {

/// The bytes of `path`. IoError(path, "cannot open (<OS reason>)") or "cannot read (<OS reason>)";
/// a directory is an IoError "is a directory, not a file".
std::string readFileBytes(const std::string& path);

/// "cannot open (<strerror(err)>)": the wording every reader uses for a file it cannot open.
std::string cannotOpenReason(int err);

} // namespace moewb
