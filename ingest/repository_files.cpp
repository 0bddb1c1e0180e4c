// SPDX-License-Identifier: GPL-3.0-or-later
#include "repository_files.h"

#include <git2.h>

#include <QTemporaryDir>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>

namespace folio::ingest {

namespace {

void initLibgit2() {
    static std::once_flag once;
    std::call_once(once, [] { git_libgit2_init(); });
}

std::string lastGitError(int code) {
    const git_error* e = git_error_last();
    return e && e->message ? std::string(e->message) : cat("libgit2 error ", code);
}

struct RepositoryDeleter {
    void operator()(git_repository* r) const { git_repository_free(r); }
};
struct IndexDeleter {
    void operator()(git_index* i) const { git_index_free(i); }
};
struct StatusListDeleter {
    void operator()(git_status_list* s) const { git_status_list_free(s); }
};
using RepositoryPtr = std::unique_ptr<git_repository, RepositoryDeleter>;
using IndexPtr = std::unique_ptr<git_index, IndexDeleter>;
using StatusListPtr = std::unique_ptr<git_status_list, StatusListDeleter>;

// `path` inside the folder `prefix` ("" = everywhere); returns the part below it.
bool underPrefix(std::string_view path, std::string_view prefix, std::string_view& below) {
    if (prefix.empty()) {
        below = path;
        return true;
    }
    if (path.size() <= prefix.size() || !path.starts_with(prefix) || path[prefix.size()] != '/')
        return false;
    below = path.substr(prefix.size() + 1);
    return true;
}

Status addTrackedFiles(git_repository* repo, std::string_view prefix, RepositoryListing& out,
                       std::set<std::string>& seen) {
    git_index* rawIndex = nullptr;
    if (int rc = git_repository_index(&rawIndex, repo); rc < 0)
        return makeError(ErrorCode::Io, "cannot read the git index: ", lastGitError(rc));
    IndexPtr index(rawIndex);
    const size_t count = git_index_entrycount(index.get());
    for (size_t i = 0; i < count; ++i) {
        const git_index_entry* entry = git_index_get_byindex(index.get(), i);
        std::string_view below;
        if (!entry || !underPrefix(entry->path, prefix, below))
            continue;
        std::string relative(below);
        if (!seen.insert(relative).second)
            continue;  // conflict stages name the same path more than once
        if (entry->mode == GIT_FILEMODE_COMMIT) {
            out.skipped.push_back(
                {relative, "git submodule (not followed; add it as its own source)"});
            continue;
        }
        std::error_code ec;
        if (!std::filesystem::exists(std::filesystem::symlink_status(out.root / relative, ec))) {
            out.skipped.push_back({relative, "tracked by git but missing from the work tree"});
            continue;
        }
        out.files.push_back(std::move(relative));
    }
    return {};
}

Status addUntrackedFiles(git_repository* repo, std::string_view prefix, RepositoryListing& out,
                         std::set<std::string>& seen) {
    git_status_options options = GIT_STATUS_OPTIONS_INIT;
    options.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
    options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
                    GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
    std::string spec(prefix);
    char* specs[] = {spec.data()};
    if (!prefix.empty()) {
        options.pathspec.strings = specs;
        options.pathspec.count = 1;
    }
    git_status_list* rawList = nullptr;
    if (int rc = git_status_list_new(&rawList, repo, &options); rc < 0)
        return makeError(ErrorCode::Io, "cannot list the work tree: ", lastGitError(rc));
    StatusListPtr list(rawList);
    const size_t count = git_status_list_entrycount(list.get());
    for (size_t i = 0; i < count; ++i) {
        const git_status_entry* entry = git_status_byindex(list.get(), i);
        if (!entry || !(entry->status & GIT_STATUS_WT_NEW) || !entry->index_to_workdir)
            continue;
        std::string_view below;
        if (!underPrefix(entry->index_to_workdir->new_file.path, prefix, below))
            continue;
        std::string relative(below);
        if (relative.ends_with('/')) {
            relative.pop_back();
            out.skipped.push_back({relative, "nested git repository (add it as its own source)"});
            continue;
        }
        if (seen.insert(relative).second)
            out.files.push_back(std::move(relative));
    }
    return {};
}

std::string normalisedString(const std::filesystem::path& p) {
    std::string s = p.lexically_normal().generic_string();
    while (s.size() > 1 && s.back() == '/')
        s.pop_back();
    return s;
}

}  // namespace

Result<RepositoryListing> listRepositoryFiles(const std::filesystem::path& folder) {
    initLibgit2();
    std::error_code ec;
    const std::filesystem::path root = std::filesystem::canonical(folder, ec);
    if (ec || !std::filesystem::is_directory(root))
        return makeError(ErrorCode::NotFound, folder.string(), ": no such folder");
    RepositoryListing listing;
    listing.root = root;
    std::set<std::string> seen;

    git_repository* rawRepo = nullptr;
    const int openRc = git_repository_open_ext(&rawRepo, root.c_str(), 0, nullptr);
    RepositoryPtr repo(rawRepo);
    std::string prefix;
    bool inWorkTree =
        openRc == 0 && !git_repository_is_bare(repo.get()) && git_repository_workdir(repo.get());
    if (inWorkTree) {
        const std::filesystem::path workdir =
            std::filesystem::canonical(git_repository_workdir(repo.get()), ec);
        prefix = normalisedString(root.lexically_relative(workdir));
        if (prefix == ".")
            prefix.clear();
        if (ec || prefix.starts_with(".."))
            return makeError(ErrorCode::Io, root.string(),
                             ": cannot place it in its git work tree");
        // A folder its enclosing work tree ignores is not part of it: read it as a plain folder.
        int ignored = 0;
        if (!prefix.empty() &&
            git_ignore_path_is_ignored(&ignored, repo.get(), (prefix + "/").c_str()) == 0 &&
            ignored)
            inWorkTree = false;
    }
    if (inWorkTree) {
        listing.gitWorkTree = true;
        FOLIO_TRY(addTrackedFiles(repo.get(), prefix, listing, seen));
        FOLIO_TRY(addUntrackedFiles(repo.get(), prefix, listing, seen));
    } else {
        // A plain folder: a bare repository elsewhere, with the folder as its work tree.
        QTemporaryDir scratch;
        if (!scratch.isValid())
            return makeError(ErrorCode::Io,
                             "cannot create a temporary folder for the ignore rules");
        git_repository* rawScratch = nullptr;
        if (int rc = git_repository_init(&rawScratch, scratch.path().toUtf8().constData(), 1);
            rc < 0)
            return makeError(ErrorCode::Io, "cannot prepare the ignore rules: ", lastGitError(rc));
        RepositoryPtr scratchRepo(rawScratch);
        if (int rc = git_repository_set_workdir(scratchRepo.get(), root.c_str(), 0); rc < 0)
            return makeError(ErrorCode::Io, "cannot prepare the ignore rules: ", lastGitError(rc));
        FOLIO_TRY(addUntrackedFiles(scratchRepo.get(), {}, listing, seen));
    }
    std::sort(listing.files.begin(), listing.files.end());
    return listing;
}

}  // namespace folio::ingest
