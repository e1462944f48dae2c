// The hub cache as huggingface_hub lays it out, so that Python tools and
// Tessera share one copy of each file:
//
//   <cache>/models--ORG--NAME/blobs/<etag>            the bytes (LFS files: etag = sha256)
//   <cache>/models--ORG--NAME/blobs/<etag>.incomplete  a download in progress (resumed with Range)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<file> relative symlinks to ../../blobs/<etag>
//   <cache>/models--ORG--NAME/refs/<revision>          the commit a branch or tag named (no newline)
//   <cache>/.locks/models--ORG--NAME/<etag>.lock       flock'd while a blob is written

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Paths and atomic writes inside one hub cache folder.
public struct HubCache: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public func repoFolder(_ ref: RepoReference) -> String { root + "/" + ref.cacheFolderName }
    public func blobPath(_ ref: RepoReference, etag: String) -> String { repoFolder(ref) + "/blobs/" + etag }
    public func snapshotFolder(_ ref: RepoReference, commit: String) -> String {
        repoFolder(ref) + "/snapshots/" + commit
    }
    public func refPath(_ ref: RepoReference, revision: String) -> String { repoFolder(ref) + "/refs/" + revision }
    func lockPath(_ ref: RepoReference, etag: String) -> String {
        root + "/.locks/" + ref.cacheFolderName + "/" + etag + ".lock"
    }

    /// The commit the cache knows for the reference: the revision itself when it
    /// is a commit hash with a snapshot, else the one refs/<revision> names.
    public func cachedCommit(_ ref: RepoReference) -> String? {
        if ref.revisionIsCommit {
            return isDirectory(snapshotFolder(ref, commit: ref.revision)) ? ref.revision : nil
        }
        guard let data = try? readSmallFile(refPath(ref, revision: ref.revision), maxBytes: 256) else { return nil }
        let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return RepoReference.isCommitHash(commit) ? commit : nil
    }

    /// Records that `ref.revision` names `commit` (nothing for a commit hash), atomically.
    func writeRef(_ ref: RepoReference, commit: String) throws {
        guard ref.revision != commit else { return }
        let path = refPath(ref, revision: ref.revision)
        if let data = try? readSmallFile(path, maxBytes: 256), String(decoding: data, as: UTF8.self) == commit {
            return
        }
        try makeFolder(parent(of: path))
        try writeAtomically(Data(commit.utf8), to: path)
    }

    /// Points snapshots/<commit>/<file> at blobs/<etag> with a relative link, as huggingface_hub does.
    func link(_ ref: RepoReference, commit: String, file: String, etag: String) throws {
        let pointer = snapshotFolder(ref, commit: commit) + "/" + file
        let depth = file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/" + etag
        try makeFolder(parent(of: pointer))
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: pointer), existing == target {
            return
        }
        // A new link under a temporary name renamed over the old one: never a moment without a file.
        let temporary = pointer + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        guard symlink(target, temporary) == 0 else {
            throw HubError.cache(path: temporary, detail: "cannot create a symlink: \(errnoText())")
        }
        guard rename(temporary, pointer) == 0 else {
            let reason = errnoText()
            unlink(temporary)
            throw HubError.cache(path: pointer, detail: "cannot place the symlink: \(reason)")
        }
    }

    /// The files of a cached snapshot (relative paths), links that resolve to a file only.
    public func snapshotFiles(_ ref: RepoReference, commit: String) -> [String] {
        let folder = snapshotFolder(ref, commit: commit)
        guard let entries = try? FileManager.default.subpathsOfDirectory(atPath: folder) else { return [] }
        return entries.filter { isRegularFile(folder + "/" + $0) }.sorted()
    }

    // MARK: - Small file-system helpers

    func makeFolder(_ path: String) throws {
        try makeFolders(path)
    }

    /// Writes a small file through a temporary name and a rename.
    func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        do {
            try data.write(to: URL(fileURLWithPath: temporary))
        } catch {
            throw HubError.cache(path: temporary, detail: "cannot write: \(error.localizedDescription)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = errnoText()
            unlink(temporary)
            throw HubError.cache(path: path, detail: "cannot rename into place: \(reason)")
        }
    }

    /// A regular file's bytes, refusing anything else or anything over `maxBytes`.
    func readSmallFile(_ path: String, maxBytes: Int) throws -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else { throw HubError.cache(path: path, detail: "missing") }
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= maxBytes else {
            throw HubError.cache(path: path, detail: "not a regular file of at most \(maxBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HubError.cache(path: path, detail: "cannot read")
        }
        return data
    }
}

/// Creates a folder and its parents.
func makeFolders(_ path: String) throws {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw HubError.cache(path: path, detail: "cannot create the folder: \(error.localizedDescription)")
    }
}

/// The folder part of a path.
func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return String(path[..<slash])
}

/// Whether the path (links followed) is a regular file.
func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// Whether the path (links followed) is a folder.
func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// The size of a regular file (links followed), nil when there is none.
func fileSize(_ path: String) -> Int64? {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int64(info.st_size)
}

func errnoText() -> String {
    String(cString: strerror(errno))
}

/// An exclusive flock on a lock file (the lock huggingface_hub's filelock takes),
/// polled without blocking a thread; released by `unlock()`.
struct FileLock {
    private let fd: Int32

    static func acquire(_ path: String) async throws -> FileLock {
        try makeFolders(parent(of: path))
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubError.cache(path: path, detail: "cannot open the lock file: \(errnoText())") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = errnoText()
                close(fd)
                throw HubError.cache(path: path, detail: "cannot lock: \(reason)")
            }
            do { try await Task.sleep(for: .milliseconds(100)) } catch {
                close(fd)
                throw error
            }
        }
        return FileLock(fd: fd)
    }

    func unlock() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
