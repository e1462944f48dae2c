// Resolving `ORG/NAME[@REVISION]` to a local path Tessera can load: ask the
// hub for the commit and file list, choose the files loading needs, fetch the
// missing ones into the shared cache (several at once), and hand back the
// snapshot folder (safetensors models) or the chosen .gguf file in it. With
// HF_HUB_OFFLINE, or when the hub cannot be reached, the cache alone answers.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A model resolved into the hub cache.
public struct ResolvedModel: Sendable, Equatable {
    /// What to load: the snapshot folder, or the GGUF file inside it.
    public let path: String
    public let snapshot: String
    public let commit: String
    /// The repo files this model uses (relative to the snapshot).
    public let files: [String]
    /// Files fetched now (the rest were already in the cache).
    public let downloaded: [String]
    /// The hub could not be reached, and the cache answered.
    public let fromCacheOnly: Bool
}

/// The files loading a model needs, chosen from a repo's file list.
public enum LoadableFiles {
    /// Beside config.json: generation defaults, tokenizer and chat template files.
    public static let sidecars = [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "chat_template.jinja", "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt"
    ]
    public static let safetensorsIndex = "model.safetensors.index.json"

    /// What to fetch first; `gguf` is the chosen GGUF file for a GGUF model. A
    /// folder model whose weights are sharded lists its shards only after the
    /// index is read (`shards(fromIndex:)`).
    public struct Choice: Equatable, Sendable {
        public var files: [String]
        public var gguf: String?
    }

    /// Chooses among `files`: a GGUF file when `ggufFile` or the reference's `:QUANT` asks for
    /// one, or the repo has .gguf files and no safetensors weights; else config.json, the
    /// sidecars present, and model.safetensors or the index (or every top-level .safetensors).
    public static func choose(from files: [String], repo: String, ggufFile: String?) throws -> Choice {
        let ggufs = files.filter { $0.lowercased().hasSuffix(".gguf") }
        let safetensors = files.filter { $0.hasSuffix(".safetensors") && !$0.contains("/") }
        if ggufFile != nil || (safetensors.isEmpty && !ggufs.isEmpty) {
            return Choice(files: [], gguf: try chooseGGUF(ggufs, repo: repo, wanted: ggufFile))
        }
        guard files.contains("config.json") else {
            throw HubError.noLoadableFiles(
                repo: repo, detail: "no config.json with .safetensors weights and no .gguf file" + listing(files))
        }
        var chosen = sidecars.filter(files.contains)
        if files.contains(safetensorsIndex) {
            chosen.append(safetensorsIndex)
        } else if files.contains("model.safetensors") {
            chosen.append("model.safetensors")
        } else if !safetensors.isEmpty {
            chosen += safetensors.filter { !$0.hasPrefix("adapter") }
        } else {
            let weights = files.contains { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") }
            throw HubError.noLoadableFiles(
                repo: repo,
                detail: weights
                    ? "its weights are PyTorch .bin files; Tessera loads .safetensors (or .gguf)"
                    : "config.json but no .safetensors weights")
        }
        return Choice(files: chosen, gguf: nil)
    }

    /// The GGUF file named exactly, else the one whose name contains the pattern
    /// (case-insensitive, e.g. Q4_K_M), else the only one.
    static func chooseGGUF(_ ggufs: [String], repo: String, wanted: String?) throws -> String {
        guard !ggufs.isEmpty else { throw HubError.noLoadableFiles(repo: repo, detail: "it has no .gguf files") }
        guard let wanted else {
            if ggufs.count == 1 { return ggufs[0] }
            throw HubError.noLoadableFiles(
                repo: repo,
                detail: "it has \(ggufs.count) .gguf files; choose one with --gguf-file NAME or a quantization such as "
                    + "ORG/NAME:Q4_K_M" + listing(ggufs))
        }
        if ggufs.contains(wanted) { return wanted }
        let pattern = wanted.lowercased()
        let matches = ggufs.filter { $0.lowercased().contains(pattern) }
        if matches.count == 1 { return matches[0] }
        throw HubError.noLoadableFiles(
            repo: repo,
            detail: matches.isEmpty
                ? "no .gguf file matches \(wanted)" + listing(ggufs)
                : "\(matches.count) .gguf files match \(wanted); pass the full name with --gguf-file" + listing(matches)
        )
    }

    /// The shard files a model.safetensors.index.json's weight_map names.
    public static func shards(fromIndex data: Data, repo: String) throws -> [String] {
        struct Index: Decodable { let weight_map: [String: String] }
        guard let index = try? JSONDecoder().decode(Index.self, from: data) else {
            throw HubError.noLoadableFiles(repo: repo, detail: "\(safetensorsIndex) has no weight_map")
        }
        let shards = Set(index.weight_map.values).sorted()
        if let bad = shards.first(where: { !isSafeRelativePath($0) || !$0.hasSuffix(".safetensors") }) {
            throw HubError.noLoadableFiles(
                repo: repo, detail: "\(safetensorsIndex) names an unusable file \(bad.debugDescription)")
        }
        return shards
    }

    private static func listing(_ files: [String]) -> String {
        let shown = files.prefix(12).joined(separator: ", ")
        return files.isEmpty ? " (the repo is empty)" : " (it has: \(shown)\(files.count > 12 ? ", ..." : ""))"
    }
}

/// Resolving and downloading models.
public enum HubModels {
    /// The local path for `ref`, downloading what is missing (or, offline, from the cache only).
    public static func resolve(
        _ ref: RepoReference, ggufFile: String? = nil, configuration: HubConfiguration,
        progress: DownloadProgress? = nil
    ) async throws -> ResolvedModel {
        let wanted = ggufFile ?? ref.quantization
        let cache = HubCache(root: configuration.cacheDirectory)
        if configuration.offline {
            return try resolveFromCache(ref, ggufFile: wanted, cache: cache, hubUnreachable: false)
        }
        let client = HubClient(configuration: configuration)
        do {
            let resolved = try await download(ref, wanted: wanted, client: client, cache: cache, progress: progress)
            progress?.end()
            await client.shutdown()
            return resolved
        } catch HubError.network(let url, let detail) {
            progress?.end(completed: false)
            await client.shutdown()
            // No network: what the cache holds for this revision still serves.
            if let cached = try? resolveFromCache(ref, ggufFile: wanted, cache: cache, hubUnreachable: true) {
                return cached
            }
            throw HubError.network(url: url, detail: detail)
        } catch {
            progress?.end(completed: false)
            await client.shutdown()
            throw error
        }
    }

    /// The model from the cache alone: refs/<revision> (or the commit), its snapshot, the files in it.
    public static func resolveFromCache(
        _ ref: RepoReference, ggufFile: String?, cache: HubCache, hubUnreachable: Bool = false
    ) throws -> ResolvedModel {
        guard let commit = cache.cachedCommit(ref) else {
            let missing =
                ref.revisionIsCommit
                ? "no snapshot \(ref.revision)" : "no refs/\(ref.revision) in \(cache.repoFolder(ref))"
            throw HubError.notCached(repo: ref.repo, revision: ref.revision, detail: missing)
        }
        let snapshot = cache.snapshotFolder(ref, commit: commit)
        let present = cache.snapshotFiles(ref, commit: commit)
        let choice: LoadableFiles.Choice
        do { choice = try LoadableFiles.choose(from: present, repo: ref.repo, ggufFile: ggufFile) } catch {
            throw HubError.notCached(repo: ref.repo, revision: ref.revision, detail: "\(error)")
        }
        var files = choice.files + (choice.gguf.map { [$0] } ?? [])
        if files.contains(LoadableFiles.safetensorsIndex) {
            let index = try cache.readSmallFile(snapshot + "/" + LoadableFiles.safetensorsIndex, maxBytes: 64 << 20)
            let shards = try LoadableFiles.shards(fromIndex: index, repo: ref.repo)
            if let missing = shards.first(where: { !present.contains($0) }) {
                throw HubError.notCached(
                    repo: ref.repo, revision: ref.revision, detail: "the snapshot lacks \(missing)")
            }
            files += shards
        }
        let path = choice.gguf.map { snapshot + "/" + $0 } ?? snapshot
        return ResolvedModel(
            path: path, snapshot: snapshot, commit: commit, files: files, downloaded: [], fromCacheOnly: hubUnreachable)
    }

    private static func download(
        _ ref: RepoReference, wanted: String?, client: HubClient, cache: HubCache, progress: DownloadProgress?
    ) async throws -> ResolvedModel {
        let info = try await client.revisionInfo(ref)
        let choice = try LoadableFiles.choose(from: info.files, repo: ref.repo, ggufFile: wanted)
        try cache.makeFolder(cache.repoFolder(ref) + "/blobs")
        try cache.writeRef(ref, commit: info.commit)
        let snapshot = cache.snapshotFolder(ref, commit: info.commit)
        var files = choice.files + (choice.gguf.map { [$0] } ?? [])
        var downloaded = try await fetch(
            files, ref: ref, commit: info.commit, client: client, cache: cache, progress: progress)
        // A sharded model: the index names the shards to fetch next.
        if choice.files.contains(LoadableFiles.safetensorsIndex) {
            let index = try cache.readSmallFile(snapshot + "/" + LoadableFiles.safetensorsIndex, maxBytes: 64 << 20)
            let shards = try LoadableFiles.shards(fromIndex: index, repo: ref.repo)
            if let missing = shards.first(where: { !info.files.contains($0) }) {
                throw HubError.fileNotFound(repo: ref.repo, revision: ref.revision, file: missing)
            }
            downloaded += try await fetch(
                shards, ref: ref, commit: info.commit, client: client, cache: cache, progress: progress)
            files += shards
        }
        let path = choice.gguf.map { snapshot + "/" + $0 } ?? snapshot
        return ResolvedModel(
            path: path, snapshot: snapshot, commit: info.commit, files: files, downloaded: downloaded,
            fromCacheOnly: false)
    }

    /// Fetches files, at most `maxConcurrentDownloads` at once; the names of those downloaded now.
    private static func fetch(
        _ files: [String], ref: RepoReference, commit: String, client: HubClient, cache: HubCache,
        progress: DownloadProgress?
    ) async throws -> [String] {
        let one: @Sendable (String) async throws -> String? = { file in
            try await obtain(file, ref: ref, commit: commit, client: client, cache: cache, progress: progress)
                ? file : nil
        }
        return try await withThrowingTaskGroup(of: String?.self) { group in
            var pending = files.makeIterator()
            var downloaded: [String] = []
            for _ in 0..<client.configuration.maxConcurrentDownloads {
                guard let file = pending.next() else { break }
                group.addTask { try await one(file) }
            }
            // One finishes, the next starts: never more than the bound at once.
            while let result = try await group.next() {
                if let result { downloaded.append(result) }
                if let file = pending.next() { group.addTask { try await one(file) } }
            }
            return downloaded.sorted()
        }
    }

    /// One file into the cache: nothing when the snapshot has it; else its blob
    /// (downloaded under the blob's lock unless present) and the snapshot link. True when downloaded.
    static func obtain(
        _ file: String, ref: RepoReference, commit: String, client: HubClient, cache: HubCache,
        progress: DownloadProgress?
    ) async throws -> Bool {
        if isRegularFile(cache.snapshotFolder(ref, commit: commit) + "/" + file) {
            progress?.finish(file: file, downloaded: false)
            return false
        }
        let metadata = try await client.metadata(ref, commit: commit, file: file)
        let blob = cache.blobPath(ref, etag: metadata.etag)
        var fetched = false
        if !isRegularFile(blob) {
            let lock = try await FileLock.acquire(cache.lockPath(ref, etag: metadata.etag))
            defer { lock.unlock() }
            // Another process may have finished it while this one waited.
            if !isRegularFile(blob) {
                let incomplete = blob + ".incomplete"
                try await client.download(ref, file: file, metadata: metadata, into: incomplete, progress: progress)
                guard rename(incomplete, blob) == 0 else {
                    throw HubError.cache(path: blob, detail: "cannot move the download into place: \(errnoText())")
                }
                fetched = true
            }
        }
        try cache.link(ref, commit: commit, file: file, etag: metadata.etag)
        progress?.finish(file: file, downloaded: fetched)
        return fetched
    }
}
