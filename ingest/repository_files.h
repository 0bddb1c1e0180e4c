// SPDX-License-Identifier: GPL-3.0-or-later
// Which files of a folder belong in its document, decided by git's own rules through libgit2.
// Inside a git work tree: the tracked files (the index) plus the untracked files git does not
// ignore (nested .gitignore files, .git/info/exclude, core.excludesFile, negations — exactly as
// `git status` sees them). A plain folder gets the same ignore semantics from a throw-away bare
// repository in a temporary folder whose work tree is pointed at the folder (nothing is written
// into the folder). Owns: the libgit2 objects while it runs. Promises: paths are relative to the
// folder, '/'-separated and sorted; submodules, nested repositories and tracked files missing from
// the work tree are listed as skipped with the reason. Never follows symbolic links to folders
// (git does not either) and never reads file contents.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "document.h"
#include "inference/result.h"

namespace folio::ingest {

struct RepositoryListing {
    std::filesystem::path root;  // the folder, absolute and normalised
    bool gitWorkTree = false;    // false: a plain folder (ignore files honoured all the same)
    std::vector<std::string> files;
    std::vector<SkippedItem> skipped;
};

Result<RepositoryListing> listRepositoryFiles(const std::filesystem::path& folder);

}  // namespace folio::ingest
