// SPDX-License-Identifier: GPL-3.0-or-later
#include "snapshot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <thread>

#include "inference/checksum.h"

namespace folio::storage {
namespace {

constexpr char kMagic[8] = {'F', 'O', 'L', 'I', 'O', 'S', 'N', 'P'};
constexpr uint64_t kAlign = 4096;
constexpr uint32_t kMaxHeaderBytes = 1u << 20;
constexpr uint32_t kMaxTensors = 4096;
constexpr size_t kIoChunk = size_t{16} << 20;
// Restoring: reads of kReadChunk bytes; at most kMaxInFlight bytes read but not yet verified;
// the kernel is asked to fetch kReadAhead bytes beyond the read in progress, and up to
// kWaitAhead bytes (in kReadChunk steps) while the reader waits for the state's memory.
constexpr uint64_t kReadChunk = uint64_t{8} << 20;
constexpr uint64_t kMaxInFlight = uint64_t{64} << 20;
constexpr uint64_t kReadAhead = uint64_t{32} << 20;
constexpr uint64_t kWaitAhead = uint64_t{256} << 20;

uint64_t alignUp(uint64_t v) {
    return (v + kAlign - 1) / kAlign * kAlign;
}

std::span<const std::byte> asBytes(const void* data, size_t size) {
    return {static_cast<const std::byte*>(data), size};
}

std::string errnoText(int err) {
    std::string text = std::strerror(err);
    if (err == ENOSPC)
        text += " (the disk is full)";
    else if (err == EFBIG)
        text += " (the file size limit was reached)";
    else if (err == EDQUOT)
        text += " (the disk quota is exhausted)";
    return text;
}

// An fd closed on destruction.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const { return fd_; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_;
};

class HeaderWriter {
  public:
    template <typename T>
    void value(T v) {
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    void str(const std::string& s) {
        value<uint16_t>(static_cast<uint16_t>(s.size()));
        const auto* p = reinterpret_cast<const std::byte*>(s.data());
        bytes.insert(bytes.end(), p, p + s.size());
    }
    std::vector<std::byte> bytes;
};

class HeaderReader {
  public:
    explicit HeaderReader(std::span<const std::byte> bytes) : bytes_(bytes) {}
    template <typename T>
    bool value(T& out) {
        if (bytes_.size() - pos_ < sizeof(T))
            return false;
        std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool str(std::string& out) {
        uint16_t n = 0;
        if (!value(n) || bytes_.size() - pos_ < n)
            return false;
        out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    size_t position() const { return pos_; }

  private:
    std::span<const std::byte> bytes_;
    size_t pos_ = 0;
};

Status writeAll(int fd, std::span<const std::byte> bytes, const std::string& what) {
    size_t done = 0;
    while (done < bytes.size()) {
        const size_t n = std::min(bytes.size() - done, kIoChunk);
        const ssize_t w = ::write(fd, bytes.data() + done, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return makeError(ErrorCode::Io, "cannot write ", what, ": ", errnoText(errno));
        }
        if (w == 0)
            return makeError(ErrorCode::Io, "cannot write ", what, ": no progress");
        done += static_cast<size_t>(w);
    }
    return {};
}

Status readAll(int fd, uint64_t offset, std::byte* out, uint64_t size, const std::string& what) {
    uint64_t done = 0;
    while (done < size) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(size - done, kIoChunk));
        const ssize_t r = ::pread(fd, out + done, n, static_cast<off_t>(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return makeError(ErrorCode::Io, "cannot read ", what, ": ", errnoText(errno));
        }
        if (r == 0)
            return makeError(ErrorCode::Format, what, " ends early");
        done += static_cast<uint64_t>(r);
    }
    return {};
}

// One section of a snapshot file to read into its place in the restored state and verify.
struct ReadJob {
    int fd = -1;
    uint64_t offset = 0;
    std::byte* dest = nullptr;  // where the bytes go; for tensor >= 0 set once it has memory
    int tensor = -1;            // the restored tensor the bytes go to, `into` bytes from its start
    uint64_t into = 0;
    uint64_t size = 0;
    uint32_t crc = 0;
    std::string what;  // names the file and the section, for errors
    int link = 0;
};

// Gives the restored tensors their memory on a helper thread, in the order the reads need it,
// so that zero-filling it (std::vector value-initialises) overlaps reading the files instead of
// preceding it. Asks for transparent huge pages: fewer page faults while filling and reading.
// The destructor stops and joins the thread; where no thread can be started, the constructor
// allocates everything itself.
class StateAllocator {
  public:
    StateAllocator(std::vector<inference::StateTensor>& tensors, std::vector<size_t> elements,
                   std::vector<size_t> order)
        : tensors_(tensors),
          elements_(std::move(elements)),
          order_(std::move(order)),
          ready_(tensors.size(), false) {
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error&) {
            run();
        }
    }
    StateAllocator(const StateAllocator&) = delete;
    StateAllocator& operator=(const StateAllocator&) = delete;
    ~StateAllocator() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        if (thread_.joinable())
            thread_.join();
    }

    // Whether tensors[index] has its memory, or its allocation has failed (wait says which).
    bool settled(size_t index) {
        std::lock_guard lock(mutex_);
        return ready_[index] || failed_;
    }

    // Waits until tensors[index] has its memory; false when it could not be allocated.
    bool wait(size_t index) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return ready_[index] || failed_; });
        return ready_[index];
    }

  private:
    void run() {
        for (size_t index : order_) {
            {
                std::lock_guard lock(mutex_);
                if (stop_)
                    return;
            }
            bool ok = true;
            try {
                allocate(tensors_[index].data, elements_[index]);
            } catch (const std::bad_alloc&) {
                ok = false;
            } catch (const std::length_error&) {
                ok = false;
            }
            std::lock_guard lock(mutex_);
            if (ok)
                ready_[index] = true;
            else
                failed_ = true;
            changed_.notify_all();
            if (!ok)
                return;
        }
    }

    static void allocate(std::vector<float>& v, size_t elements) {
        v.reserve(elements);
        constexpr uintptr_t kHuge = uintptr_t{2} << 20;
        const auto begin = (reinterpret_cast<uintptr_t>(v.data()) + kHuge - 1) & ~(kHuge - 1);
        const auto end = reinterpret_cast<uintptr_t>(v.data() + elements) & ~(kHuge - 1);
        if (end > begin)
            ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
        v.resize(elements);
    }

    std::vector<inference::StateTensor>& tensors_;
    const std::vector<size_t> elements_;
    const std::vector<size_t> order_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<bool> ready_;
    bool failed_ = false;
    bool stop_ = false;
    std::thread thread_;
};

struct JobFailure {
    size_t job = 0;
    Error error;
};

// Runs `jobs` (numbered in file order) in the order `order`, with the reads and the checksums
// overlapped: this thread issues large preads (with readahead hints for what follows) straight
// into the destinations, one worker thread checksums each chunk once it has arrived. Returns the
// failure (a read error or a checksum mismatch) of the first failing job in file order, as
// reading and checking them one after another in file order would: once job f has failed, jobs
// after f are skipped, but every job before f still runs. Running out of memory for the state
// ends everything at once. The worker is always joined before returning.
std::optional<JobFailure> runReadJobs(std::vector<ReadJob>& jobs, const std::vector<size_t>& order,
                                      std::vector<inference::StateTensor>& tensors,
                                      StateAllocator& allocator) {
    struct Chunk {
        size_t job;
        const std::byte* data;
        uint64_t size;
        bool last;  // the job's final chunk: its checksum is complete
    };
    constexpr size_t kNone = SIZE_MAX;
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<Chunk> queue;
    uint64_t inFlight = 0;
    bool closing = false;
    size_t firstFailed = kNone;                         // under the mutex, as is `failure`
    std::optional<JobFailure> failure;                  // that of job firstFailed
    auto record = [&](JobFailure f, bool everything) {  // with the mutex held
        if (everything || f.job < firstFailed) {
            firstFailed = everything ? 0 : f.job;
            failure = std::move(f);
        }
        changed.notify_all();
    };
    auto skipped = [&](size_t job) {
        std::lock_guard lock(mutex);
        return job >= firstFailed;
    };

    // Checks the queued chunks in order; with `wait`, waits for more until the queue closes.
    uint32_t running = 0;
    size_t runningJob = kNone;
    auto check = [&](bool wait) {
        for (;;) {
            Chunk chunk{};
            {
                std::unique_lock lock(mutex);
                if (wait)
                    changed.wait(lock, [&] { return !queue.empty() || closing; });
                if (queue.empty())
                    return;
                chunk = queue.front();
                queue.pop_front();
            }
            if (chunk.job != runningJob) {  // a new job (the last may have been abandoned)
                runningJob = chunk.job;
                running = 0;
            }
            const bool wanted = !skipped(chunk.job);
            if (wanted)
                running = inference::crc32c(running, {chunk.data, static_cast<size_t>(chunk.size)});
            std::lock_guard lock(mutex);
            inFlight -= chunk.size;
            if (wanted && chunk.last && running != jobs[chunk.job].crc)
                record({chunk.job, makeError(ErrorCode::Format, jobs[chunk.job].what,
                                             ": checksum mismatch (the file is damaged)")},
                       false);
            changed.notify_all();
        }
    };
    // The worker; where no thread can be started, this thread checks each chunk after reading it.
    std::thread worker;
    try {
        worker = std::thread(check, true);
    } catch (const std::system_error&) {
    }
    // Closes the queue and joins the worker on every way out of the reading below.
    struct Joiner {
        std::thread& thread;
        std::mutex& mutex;
        std::condition_variable& changed;
        bool& closing;
        ~Joiner() {
            {
                std::lock_guard lock(mutex);
                closing = true;
            }
            changed.notify_all();
            if (thread.joinable())
                thread.join();
        }
    };

    {
        Joiner joiner{worker, mutex, changed, closing};
        // Readahead: the kernel is asked (WILLNEED) for the bytes up to `upTo`, counted over
        // the jobs in `order`, so that the disk stays busy while a chunk is being copied.
        uint64_t advised = 0, started = 0;
        size_t adviseStep = 0;  // index into order
        uint64_t adviseAt = 0;  // within jobs[order[adviseStep]]
        auto adviseUpTo = [&](uint64_t upTo) {
            while (adviseStep < order.size() && advised < upTo) {
                const ReadJob& a = jobs[order[adviseStep]];
                const uint64_t n = std::min(a.size - adviseAt, upTo - advised);
                if (n > 0)
                    ::posix_fadvise(a.fd, static_cast<off_t>(a.offset + adviseAt),
                                    static_cast<off_t>(n), POSIX_FADV_WILLNEED);
                advised += n;
                adviseAt += n;
                if (adviseAt == a.size) {
                    ++adviseStep;
                    adviseAt = 0;
                }
            }
        };
        for (size_t j : order) {
            ReadJob& job = jobs[j];
            if (skipped(j)) {
                started += job.size;
                continue;
            }
            if (job.tensor >= 0) {
                const auto t = static_cast<size_t>(job.tensor);
                // Until the memory is there, let the disk fetch what comes next.
                while (!allocator.settled(t) && advised < started + kWaitAhead)
                    adviseUpTo(advised + kReadChunk);
                if (!allocator.wait(t)) {
                    std::lock_guard lock(mutex);
                    record({j, makeError(ErrorCode::OutOfMemory,
                                         "no memory for the restored state (tensor ",
                                         tensors[t].name, ")")},
                           true);
                    break;
                }
                job.dest = reinterpret_cast<std::byte*>(tensors[t].data.data()) + job.into;
            }
            uint64_t done = 0;
            do {
                const uint64_t n = std::min(job.size - done, kReadChunk);
                {
                    std::unique_lock lock(mutex);
                    changed.wait(lock,
                                 [&] { return inFlight + n <= kMaxInFlight || j >= firstFailed; });
                    if (j >= firstFailed)
                        break;  // an earlier job failed meanwhile: this one no longer matters
                }
                adviseUpTo(started + n + kReadAhead);
                if (auto s = readAll(job.fd, job.offset + done, job.dest + done, n, job.what); !s) {
                    std::lock_guard lock(mutex);
                    record({j, s.error()}, false);
                    break;
                }
                done += n;
                started += n;
                {
                    std::lock_guard lock(mutex);
                    queue.push_back({j, job.dest + done - n, n, done == job.size});
                    inFlight += n;
                }
                changed.notify_all();
                if (!worker.joinable())
                    check(false);
            } while (done < job.size);
            started += job.size - done;  // what an abandoned job leaves unread
        }
    }  // joined: the worker has checked every chunk queued
    return failure;
}

Status fsyncDirectory(const std::filesystem::path& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0)
        return makeError(ErrorCode::Io, "cannot open ", dir.string(), ": ", errnoText(errno));
    if (::fsync(fd.get()) != 0)
        return makeError(ErrorCode::Io, "cannot flush ", dir.string(), ": ", errnoText(errno));
    return {};
}

Result<SnapshotHeader> parseHeader(int fd, const std::string& name) {
    std::byte start[16];
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return makeError(ErrorCode::Io, "cannot stat ", name, ": ", errnoText(errno));
    if (st.st_size < 16)
        return makeError(ErrorCode::Format, name, " is too short to be a snapshot");
    FOLIO_TRY(readAll(fd, 0, start, 16, name));
    if (std::memcmp(start, kMagic, 8) != 0)
        return makeError(ErrorCode::Format, name, " is not a Folio snapshot (bad magic)");
    uint32_t version = 0, headerBytes = 0;
    std::memcpy(&version, start + 8, 4);
    std::memcpy(&headerBytes, start + 12, 4);
    if (version != kSnapshotFormatVersion)
        return makeError(ErrorCode::Unsupported, name, " has snapshot format version ", version,
                         " (this Folio reads ", kSnapshotFormatVersion, ")");
    if (headerBytes < 20 || headerBytes > kMaxHeaderBytes ||
        headerBytes > static_cast<uint64_t>(st.st_size))
        return makeError(ErrorCode::Format, name, ": header length ", headerBytes,
                         " is impossible");
    std::vector<std::byte> header(headerBytes);
    FOLIO_TRY(readAll(fd, 0, header.data(), headerBytes, name));
    uint32_t storedCrc = 0;
    std::memcpy(&storedCrc, header.data() + headerBytes - 4, 4);
    if (inference::crc32c(0, std::span(header).first(headerBytes - 4)) != storedCrc)
        return makeError(ErrorCode::Format, name,
                         ": header checksum mismatch (the file is damaged)");

    const std::span<const std::byte> body =
        std::span<const std::byte>(header).first(headerBytes - 4);
    HeaderReader r(body);
    std::byte skip[16];
    for (auto& b : skip)
        r.value(b);
    SnapshotHeader h;
    uint32_t count = 0;
    if (!r.str(h.identity.modelId) || !r.str(h.identity.tokenizerId) || !r.str(h.prefixKey) ||
        !r.str(h.parentKey) || !r.value(h.tokenBegin) || !r.value(h.tokenEnd) ||
        !r.value(h.tokensOffset) || !r.value(h.tokensCrc) || !r.value(count))
        return makeError(ErrorCode::Format, name, ": header is truncated");
    if (h.tokenBegin < 0 || h.tokenEnd < h.tokenBegin || count > kMaxTensors)
        return makeError(ErrorCode::Format, name, ": token range or tensor count is impossible");
    const auto fileSize = static_cast<uint64_t>(st.st_size);
    const uint64_t tokenBytes = static_cast<uint64_t>(h.tokenEnd - h.tokenBegin) * 4;
    if (h.tokensOffset < headerBytes || h.tokensOffset > fileSize ||
        tokenBytes > fileSize - h.tokensOffset)
        return makeError(ErrorCode::Format, name, ": token section lies outside the file");
    uint64_t end = h.tokensOffset + tokenBytes;
    for (uint32_t i = 0; i < count; ++i) {
        SnapshotTensorEntry t;
        uint8_t rank = 0;
        if (!r.str(t.name) || !r.value(rank) || rank == 0 || rank > 4)
            return makeError(ErrorCode::Format, name, ": tensor ", i, " is malformed");
        uint64_t elements = 1;
        for (uint8_t d = 0; d < rank; ++d) {
            int64_t dim = 0;
            if (!r.value(dim) || dim < 0 || dim > (int64_t{1} << 40))
                return makeError(ErrorCode::Format, name, ": tensor ", t.name, " has a bad shape");
            t.shape.push_back(dim);
            elements *= static_cast<uint64_t>(dim);
            if (elements > (uint64_t{1} << 40))
                return makeError(ErrorCode::Format, name, ": tensor ", t.name, " is too large");
        }
        if (!r.value(t.offset) || !r.value(t.bytes) || !r.value(t.crc))
            return makeError(ErrorCode::Format, name, ": tensor ", t.name, " is truncated");
        if (t.bytes != elements * 4 || t.offset < headerBytes || t.offset > fileSize ||
            t.bytes > fileSize - t.offset)
            return makeError(ErrorCode::Format, name, ": tensor ", t.name,
                             " lies outside the file or disagrees with its shape");
        end = std::max(end, t.offset + t.bytes);
        h.tensors.push_back(std::move(t));
    }
    if (r.position() != headerBytes - 4)
        return makeError(ErrorCode::Format, name, ": header has trailing bytes");
    h.fileSize = end;
    if (fileSize != end)
        return makeError(ErrorCode::Format, name, " is ", fileSize, " bytes, its header says ", end,
                         " (truncated or padded)");
    return h;
}

bool isMla(const std::string& name) {
    return name.rfind("mla.", 0) == 0;
}

}  // namespace

Result<uint64_t> writeSnapshotFile(const std::filesystem::path& path,
                                   const SnapshotContent& content) {
    if (content.tensors == nullptr)
        return makeError(ErrorCode::InvalidArgument, "a snapshot needs its tensors");
    const std::vector<inference::StateTensor>& tensors = *content.tensors;
    const int64_t tokenEnd = content.tokenBegin + static_cast<int64_t>(content.tokens.size());

    // Layout first: the header's size does not depend on the offsets' values.
    HeaderWriter probe;
    probe.str(content.identity.modelId);
    probe.str(content.identity.tokenizerId);
    probe.str(content.prefixKey);
    probe.str(content.parentKey);
    uint64_t headerBytes = 16 + probe.bytes.size() + 8 + 8 + 8 + 4 + 4 + 4;
    for (const auto& t : tensors)
        headerBytes += 2 + t.name.size() + 1 + 8 * t.shape.size() + 8 + 8 + 4;
    if (headerBytes > kMaxHeaderBytes || tensors.size() > kMaxTensors)
        return makeError(ErrorCode::InvalidArgument, "snapshot header too large");

    uint64_t offset = alignUp(headerBytes);
    const uint64_t tokensOffset = offset;
    offset = alignUp(offset + content.tokens.size_bytes());
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors) {
        offsets.push_back(offset);
        offset = alignUp(offset + t.data.size() * 4);
    }

    HeaderWriter w;
    w.bytes.insert(w.bytes.end(), reinterpret_cast<const std::byte*>(kMagic),
                   reinterpret_cast<const std::byte*>(kMagic) + 8);
    w.value<uint32_t>(kSnapshotFormatVersion);
    w.value<uint32_t>(static_cast<uint32_t>(headerBytes));
    w.str(content.identity.modelId);
    w.str(content.identity.tokenizerId);
    w.str(content.prefixKey);
    w.str(content.parentKey);
    w.value<int64_t>(content.tokenBegin);
    w.value<int64_t>(tokenEnd);
    w.value<uint64_t>(tokensOffset);
    w.value<uint32_t>(inference::crc32c(0, std::as_bytes(content.tokens)));
    w.value<uint32_t>(static_cast<uint32_t>(tensors.size()));
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        if (t.name.empty() || t.shape.empty() || t.shape.size() > 4)
            return makeError(ErrorCode::InvalidArgument, "state tensor \"", t.name,
                             "\" cannot be stored");
        w.str(t.name);
        w.value<uint8_t>(static_cast<uint8_t>(t.shape.size()));
        for (int64_t d : t.shape)
            w.value<int64_t>(d);
        w.value<uint64_t>(offsets[i]);
        w.value<uint64_t>(t.data.size() * 4);
        w.value<uint32_t>(inference::crc32c(0, asBytes(t.data.data(), t.data.size() * 4)));
    }
    w.value<uint32_t>(inference::crc32c(0, w.bytes));
    if (w.bytes.size() != headerBytes)
        return makeError(ErrorCode::InvalidArgument, "snapshot header size mismatch");

    const std::filesystem::path dir = path.parent_path();
    const std::filesystem::path temp =
        dir / cat(".", path.filename().string(), ".tmp.", ::getpid());
    const std::string what = cat("snapshot ", temp.string());
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0)
        return makeError(ErrorCode::Io, "cannot create ", temp.string(), ": ", errnoText(errno));
    auto fail = [&](Error error) -> Error {
        ::unlink(temp.c_str());
        return error;
    };
    std::vector<std::byte> pad(kAlign);
    uint64_t written = 0;
    auto emit = [&](std::span<const std::byte> bytes, uint64_t at) -> Status {
        if (at > written)
            FOLIO_TRY(
                writeAll(fd.get(), std::span(pad).first(static_cast<size_t>(at - written)), what));
        FOLIO_TRY(writeAll(fd.get(), bytes, what));
        written = at + bytes.size();
        return {};
    };
    if (auto s = emit(w.bytes, 0); !s)
        return fail(s.error());
    if (auto s = emit(std::as_bytes(content.tokens), tokensOffset); !s)
        return fail(s.error());
    for (size_t i = 0; i < tensors.size(); ++i)
        if (auto s = emit(asBytes(tensors[i].data.data(), tensors[i].data.size() * 4), offsets[i]);
            !s)
            return fail(s.error());
    if (::fsync(fd.get()) != 0)
        return fail(makeError(ErrorCode::Io, "cannot flush ", what, ": ", errnoText(errno)));
    if (::close(fd.release()) != 0)
        return fail(makeError(ErrorCode::Io, "cannot close ", what, ": ", errnoText(errno)));
    if (::rename(temp.c_str(), path.c_str()) != 0)
        return fail(makeError(ErrorCode::Io, "cannot rename ", temp.string(), " to ", path.string(),
                              ": ", errnoText(errno)));
    FOLIO_TRY(fsyncDirectory(dir));
    return written;
}

Result<SnapshotHeader> readSnapshotHeader(const std::filesystem::path& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        return makeError(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "cannot open ",
                         path.string(), ": ", errnoText(errno));
    return parseHeader(fd.get(), path.string());
}

Result<RestoredState> readSnapshotChain(std::span<const std::filesystem::path> files,
                                        const SnapshotIdentity& expected, int* badLink) {
    auto blame = [&](int link, Error error) -> Error {
        if (badLink != nullptr)
            *badLink = link;
        return error;
    };
    if (files.empty())
        return blame(-1, makeError(ErrorCode::InvalidArgument, "an empty snapshot chain"));

    std::vector<std::unique_ptr<Fd>> fds;
    std::vector<SnapshotHeader> headers;
    for (size_t i = 0; i < files.size(); ++i) {
        const int link = static_cast<int>(i);
        const std::string name = files[i].string();
        auto fd = std::make_unique<Fd>(::open(files[i].c_str(), O_RDONLY | O_CLOEXEC));
        if (fd->get() < 0)
            return blame(link, makeError(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io,
                                         "cannot open ", name, ": ", errnoText(errno)));
        ::posix_fadvise(fd->get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        auto header = parseHeader(fd->get(), name);
        if (!header)
            return blame(link, header.error());
        const SnapshotHeader& h = *header;
        if (h.identity.modelId != expected.modelId ||
            h.identity.tokenizerId != expected.tokenizerId)
            return blame(link, makeError(ErrorCode::Format, name,
                                         " was made with a different model or tokenizer"));
        if (i == 0 ? (!h.parentKey.empty() || h.tokenBegin != 0)
                   : (h.parentKey != headers.back().prefixKey ||
                      h.tokenBegin != headers.back().tokenEnd))
            return blame(link, makeError(ErrorCode::Format, name,
                                         " does not continue the snapshot before it"));
        fds.push_back(std::move(fd));
        headers.push_back(std::move(header).value());
    }

    // The complete state's layout: the last link's tensors, MLA caches with every row.
    const SnapshotHeader& last = headers.back();
    RestoredState state;
    state.tokens.resize(static_cast<size_t>(last.tokenEnd));
    std::vector<size_t> elementCounts;
    for (const SnapshotTensorEntry& t : last.tensors) {
        inference::StateTensor out;
        out.name = t.name;
        out.shape = t.shape;
        if (isMla(t.name)) {
            if (t.shape.size() != 2)
                return blame(static_cast<int>(files.size()) - 1,
                             makeError(ErrorCode::Format, files.back().string(), ": tensor ",
                                       t.name, " is not a row table"));
            out.shape[0] = last.tokenEnd;
        }
        uint64_t elements = 1;
        for (int64_t d : out.shape)
            elements *= static_cast<uint64_t>(d);
        elementCounts.push_back(static_cast<size_t>(elements));  // allocated below
        state.tensors.push_back(std::move(out));
    }

    // What to read, in file order; a link found inconsistent ends the plan, and its error is
    // reported only if everything planned before it reads and verifies, as when reading
    // link by link.
    std::vector<ReadJob> jobs;
    std::optional<std::pair<int, Error>> planFailure;
    for (size_t i = 0; i < headers.size() && !planFailure; ++i) {
        const int link = static_cast<int>(i);
        const SnapshotHeader& h = headers[i];
        const std::string name = files[i].string();
        const int fd = fds[i]->get();
        const uint64_t rows = static_cast<uint64_t>(h.tokenEnd - h.tokenBegin);
        jobs.push_back({fd, h.tokensOffset,
                        reinterpret_cast<std::byte*>(state.tokens.data() + h.tokenBegin), -1, 0,
                        rows * 4, h.tokensCrc, name + " (token ids)", link});
        const bool isLast = i + 1 == headers.size();
        size_t mlaSeen = 0;
        for (const SnapshotTensorEntry& t : h.tensors) {
            if (!isLast && !isMla(t.name))
                continue;  // an ancestor's KDA state is superseded by the last link's
            auto target = std::find_if(state.tensors.begin(), state.tensors.end(),
                                       [&](const auto& s) { return s.name == t.name; });
            if (target == state.tensors.end()) {
                planFailure.emplace(link, makeError(ErrorCode::Format, name, ": tensor ", t.name,
                                                    " is not in the chain's last snapshot"));
                break;
            }
            uint64_t into = 0;  // bytes into the target tensor
            if (isMla(t.name)) {
                ++mlaSeen;
                if (t.shape.size() != 2 || t.shape[1] != target->shape[1] ||
                    t.shape[0] != static_cast<int64_t>(rows)) {
                    planFailure.emplace(
                        link, makeError(ErrorCode::Format, name, ": tensor ", t.name, " has ",
                                        t.shape[0], " rows for a range of ", rows, " tokens"));
                    break;
                }
                into = static_cast<uint64_t>(h.tokenBegin) * static_cast<uint64_t>(t.shape[1]) * 4;
            }
            jobs.push_back({fd, t.offset, nullptr, static_cast<int>(target - state.tensors.begin()),
                            into, t.bytes, t.crc, cat(name, " (tensor ", t.name, ")"), link});
        }
        if (planFailure)
            break;
        const size_t mlaExpected =
            static_cast<size_t>(std::count_if(state.tensors.begin(), state.tensors.end(),
                                              [](const auto& s) { return isMla(s.name); }));
        if (mlaSeen != mlaExpected)
            planFailure.emplace(link, makeError(ErrorCode::Format, name, " has ", mlaSeen,
                                                " MLA caches, the chain ", mlaExpected));
    }

    // Reading order: the token ids, then tensor by tensor (in the last link's order) the
    // sections of every link. Each file is still read front to back, and the state's memory,
    // allocated on a helper thread in the same order, is needed one tensor at a time.
    std::vector<size_t> order(state.tensors.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::vector<size_t> readOrder;
    for (size_t j = 0; j < jobs.size(); ++j)
        if (jobs[j].tensor < 0)
            readOrder.push_back(j);
    for (size_t t = 0; t < state.tensors.size(); ++t)
        for (size_t j = 0; j < jobs.size(); ++j)
            if (jobs[j].tensor == static_cast<int>(t))
                readOrder.push_back(j);
    StateAllocator allocator(state.tensors, std::move(elementCounts), order);
    if (auto failure = runReadJobs(jobs, readOrder, state.tensors, allocator)) {
        // Running out of memory is no fault of the files.
        const bool memory = failure->error.code == ErrorCode::OutOfMemory;
        return blame(memory ? -1 : jobs[failure->job].link, std::move(failure->error));
    }
    if (planFailure)
        return blame(planFailure->first, std::move(planFailure->second));
    for (size_t i = 0; i < state.tensors.size(); ++i)
        if (!allocator.wait(i))
            return blame(-1, makeError(ErrorCode::OutOfMemory, "no memory for the restored state (",
                                       state.tensors[i].name, ")"));
    for (const ReadJob& job : jobs)
        state.bytesRead += job.size;
    return state;
}

}  // namespace folio::storage
