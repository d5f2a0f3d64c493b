// SPDX-License-Identifier: MIT
// Reading a whole file, and saying why a path cannot be used: "no such file or directory" and
// "permission denied" are different problems for the person who has to fix them, so every
// "cannot open" carries the OS reason (docs/architecture.md, conventions).
#pragma once

#include <string>

namespace moewb {

/// The bytes of `path`. IoError "<path>: cannot open: <OS reason>" (or "cannot read: ...");
/// a directory is an InputError "is a directory, not a file".
std::string readFileBytes(const std::string& path);

/// Throws for a path that does not exist or cannot be reached: InputError "<path>: <missing>"
/// when it does not exist (ENOENT, ENOTDIR), else IoError "<path>: cannot access: <OS reason>"
/// (e.g. Permission denied on a parent directory). Call it after a check found the path unusable.
[[noreturn]] void throwCannotAccess(const std::string& path, const std::string& missing = "no such file or directory");

} // namespace moewb
