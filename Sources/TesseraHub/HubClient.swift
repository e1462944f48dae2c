// The hub's HTTP API through AsyncHTTPClient, as huggingface_hub uses it:
//   GET  {endpoint}/api/models/{repo}/revision/{rev}   commit sha and file list (siblings)
//   HEAD {endpoint}/{repo}/resolve/{commit}/{file}     X-Repo-Commit, ETag / X-Linked-Etag,
//        Content-Length / X-Linked-Size; LFS files answer 302 to a CDN (Location)
//   GET  that location, with Range to resume a partial file.
// Redirects are followed here rather than by the client, so that the token is
// sent to the endpoint's origin only, never to a CDN host.

import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file's metadata from the resolve endpoint.
struct FileMetadata: Sendable {
    /// The normalized ETag (the sha256 for LFS files, the git blob id otherwise).
    let etag: String
    /// The announced size, if any.
    let size: Int64?
    /// Where to GET the content (a CDN URL for LFS files).
    let location: String
}

/// The revision API's answer: the commit and the repo's file names.
public struct RevisionInfo: Sendable, Equatable {
    public let commit: String
    public let files: [String]
}

/// HTTP to one hub endpoint. Call `shutdown()` when done.
public struct HubClient: Sendable {
    public let configuration: HubConfiguration
    private let http: HTTPClient
    static let userAgent = "tessera/0.1.0; hf_hub-compatible"
    static let maxRedirects = 10
    /// The revision API's JSON for a large repo is well under this.
    static let maxJSONBytes = 32 << 20

    public init(configuration: HubConfiguration) {
        self.configuration = configuration
        var httpConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .milliseconds(Int64(configuration.connectTimeout.seconds * 1000)), read: .seconds(60)))
        httpConfiguration.decompression = .disabled
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: - Requests

    /// Whether `url` is on the endpoint's origin (scheme, host and port), where the token may go.
    private func isEndpointOrigin(_ url: String) -> Bool {
        sameOrigin(url, configuration.endpoint)
    }

    private func request(_ url: String, method: HTTPMethod, range: Int64? = nil) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: "Accept-Encoding", value: "identity")
        if let token = configuration.token, isEndpointOrigin(url) {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if let range, range > 0 { request.headers.add(name: "Range", value: "bytes=\(range)-") }
        return request
    }

    /// Sends a request, following redirects (all of them, or only relative ones);
    /// the final response and its URL. Network failures become `HubError.network`.
    private func send(
        _ url: String, method: HTTPMethod, range: Int64? = nil, relativeRedirectsOnly: Bool = false,
        timeout: TimeAmount
    ) async throws -> (HTTPClientResponse, String) {
        var current = url
        for _ in 0...Self.maxRedirects {
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request(current, method: method, range: range), timeout: timeout)
            } catch let error as HTTPClientError {
                throw HubError.network(url: current, detail: "\(error)")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw HubError.network(url: current, detail: "\(error)")
            }
            guard [301, 302, 303, 307, 308].contains(response.status.code),
                let location = response.headers.first(name: "Location"),
                let next = URL(string: location, relativeTo: URL(string: current))?.absoluteString
            else { return (response, current) }
            // As huggingface_hub: a HEAD follows only relative redirects (a renamed repo), not
            // an absolute one (the CDN), whose Location is where the content is fetched from.
            if relativeRedirectsOnly && isAbsoluteURL(location) { return (response, current) }
            // The body of a redirect is not wanted; drain it so the connection can be reused.
            _ = try? await response.body.collect(upTo: 1 << 20)
            current = next
        }
        throw HubError.badResponse(url: url, detail: "more than \(Self.maxRedirects) redirects")
    }

    /// A typed error for a failed status, using the hub's X-Error-Code where it sends one.
    private func failure(
        _ response: HTTPClientResponse, url: String, ref: RepoReference, file: String?
    ) -> HubError {
        let status = Int(response.status.code)
        let code = response.headers.first(name: "X-Error-Code") ?? ""
        switch (status, code) {
        case (_, "GatedRepo"), (401, _), (403, _):
            if code == "RepoNotFound" { return .repositoryNotFound(repo: ref.repo, revision: ref.revision) }
            return .unauthorized(repo: ref.repo, status: status, hasToken: configuration.token != nil)
        case (404, "EntryNotFound"):
            return .fileNotFound(repo: ref.repo, revision: ref.revision, file: file ?? "?")
        case (404, "RepoNotFound"), (404, "RevisionNotFound"):
            return .repositoryNotFound(repo: ref.repo, revision: ref.revision)
        case (404, _):
            if let file { return .fileNotFound(repo: ref.repo, revision: ref.revision, file: file) }
            return .repositoryNotFound(repo: ref.repo, revision: ref.revision)
        default:
            let message = response.headers.first(name: "X-Error-Message").map { ": " + $0 } ?? ""
            return .badResponse(url: url, detail: "HTTP \(status)\(message)")
        }
    }

    // MARK: - The API

    /// The commit a revision names and the repo's files at it.
    public func revisionInfo(_ ref: RepoReference) async throws -> RevisionInfo {
        let url = "\(configuration.endpoint)/api/models/\(ref.repo)/revision/\(percentEncoded(ref.revision))"
        let (response, finalURL) = try await send(url, method: .GET, timeout: .seconds(60))
        guard response.status == .ok else { throw failure(response, url: finalURL, ref: ref, file: nil) }
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: Self.maxJSONBytes) } catch {
            throw HubError.badResponse(url: finalURL, detail: "the model info could not be read (\(error))")
        }
        struct Info: Decodable {
            struct Sibling: Decodable { let rfilename: String }
            let sha: String?
            let siblings: [Sibling]?
        }
        guard let info = try? JSONDecoder().decode(Info.self, from: Data(body.readableBytesView)) else {
            throw HubError.badResponse(url: finalURL, detail: "the model info is not the expected JSON")
        }
        guard let sha = info.sha, RepoReference.isCommitHash(sha) else {
            throw HubError.badResponse(url: finalURL, detail: "the model info has no commit sha")
        }
        let files = (info.siblings ?? []).map(\.rfilename)
        if let bad = files.first(where: { !isSafeRelativePath($0) }) {
            throw HubError.badResponse(url: finalURL, detail: "unsafe file name \(bad.debugDescription)")
        }
        return RevisionInfo(commit: sha, files: files)
    }

    /// HEAD on the resolve URL: the ETag, size and download location of one file.
    func metadata(_ ref: RepoReference, commit: String, file: String) async throws -> FileMetadata {
        let url = "\(configuration.endpoint)/\(ref.repo)/resolve/\(commit)/\(percentEncodedPath(file))"
        let (response, finalURL) = try await send(
            url, method: .HEAD, relativeRedirectsOnly: true, timeout: .seconds(60))
        let isRedirect = (300..<400).contains(Int(response.status.code))
        guard response.status == .ok || isRedirect else { throw failure(response, url: finalURL, ref: ref, file: file) }
        guard let rawTag = response.headers.first(name: "X-Linked-Etag") ?? response.headers.first(name: "ETag") else {
            throw HubError.badResponse(url: finalURL, detail: "no ETag for \(file)")
        }
        let etag = normalizedETag(rawTag)
        guard isSafeETag(etag) else {
            throw HubError.badResponse(url: finalURL, detail: "unusable ETag \(rawTag.debugDescription) for \(file)")
        }
        let sizeText =
            response.headers.first(name: "X-Linked-Size")
            ?? (isRedirect ? nil : response.headers.first(name: "Content-Length"))
        var size: Int64?
        if let sizeText {
            guard let n = Int64(sizeText), n >= 0 else {
                throw HubError.badResponse(url: finalURL, detail: "bad size \(sizeText.debugDescription) for \(file)")
            }
            guard n <= configuration.maxFileBytes else {
                throw HubError.badResponse(
                    url: finalURL,
                    detail: "\(file) is announced as \(n) bytes, over the limit of \(configuration.maxFileBytes)")
            }
            size = n
        }
        var location = finalURL
        if isRedirect, let target = response.headers.first(name: "Location"),
            let absolute = URL(string: target, relativeTo: URL(string: finalURL))?.absoluteString
        {
            location = absolute
        }
        return FileMetadata(etag: etag, size: size, location: location)
    }

    /// Downloads `location` into `incomplete`, resuming from what it holds, retrying
    /// broken transfers; checks the size and, for a sha256 ETag, the hash.
    func download(
        _ ref: RepoReference, file: String, metadata: FileMetadata, into incomplete: String, progress: DownloadProgress?
    ) async throws {
        let expectedHash = isSHA256(metadata.etag) ? metadata.etag : nil
        var hasher = SHA256()
        var hashed: Int64 = 0
        for attempt in 1...configuration.maxAttempts {
            try Task.checkCancellation()
            var offset = fileSize(incomplete) ?? 0
            if let size = metadata.size, offset > size { offset = 0 }
            // Bytes already on disk from an earlier run are hashed once, before appending.
            if hashed != offset {
                (hasher, hashed) = try hashPrefix(of: incomplete, bytes: offset)
            }
            if attempt == 1 { progress?.begin(file: file, total: metadata.size, resumedFrom: offset) }
            if let size = metadata.size, offset == size, size > 0 {
                break
            }
            do {
                try await transfer(
                    ref, file: file, metadata: metadata, into: incomplete, from: offset, hasher: &hasher,
                    hashed: &hashed,
                    progress: progress)
                break
            } catch HubError.network(let url, let detail) {
                // A broken transfer: the next attempt resumes from what reached the disk.
                guard attempt < configuration.maxAttempts else { throw HubError.network(url: url, detail: detail) }
                progress?.retry(file: file, attempt: attempt + 1, reason: detail)
                try await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
        let received = fileSize(incomplete) ?? 0
        if let size = metadata.size, received != size {
            throw HubError.badResponse(url: metadata.location, detail: "\(file): received \(received) bytes of \(size)")
        }
        if let expectedHash {
            if hashed != received { (hasher, hashed) = try hashPrefix(of: incomplete, bytes: received) }
            let actual = hex(hasher.finalize())
            guard actual == expectedHash else {
                unlink(incomplete)
                throw HubError.hashMismatch(file: file, expected: expectedHash, actual: actual)
            }
        }
    }

    /// One GET from `offset`: appends to the file (or restarts it on a 200) and feeds the hasher.
    private func transfer(
        _ ref: RepoReference, file: String, metadata: FileMetadata, into incomplete: String, from offset: Int64,
        hasher: inout SHA256, hashed: inout Int64, progress: DownloadProgress?
    ) async throws {
        let (response, finalURL) = try await send(metadata.location, method: .GET, range: offset, timeout: .hours(24))
        var start = offset
        switch response.status.code {
        case 206:
            // The range must start where the file ends.
            let contentRange = response.headers.first(name: "Content-Range") ?? ""
            guard contentRange.hasPrefix("bytes \(offset)-") else {
                throw HubError.badResponse(
                    url: finalURL, detail: "Content-Range \(contentRange.debugDescription) for bytes=\(offset)-")
            }
        case 200:
            start = 0
        case 416:
            // Nothing past the end: the file holds everything, or the partial file is wrong.
            if let size = metadata.size, offset == size { return }
            unlink(incomplete)
            hasher = SHA256()
            hashed = 0
            throw HubError.network(url: finalURL, detail: "the partial download did not match; starting over")
        case 429, 500...599:
            throw HubError.network(url: finalURL, detail: "HTTP \(response.status.code)")
        default:
            throw failure(response, url: finalURL, ref: ref, file: file)
        }
        if start == 0 && offset > 0 { progress?.restart(file: file) }
        if start == 0 {
            hasher = SHA256()
            hashed = 0
        }
        let fd = open(incomplete, O_WRONLY | O_CREAT | O_CLOEXEC | (start == 0 ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else { throw HubError.cache(path: incomplete, detail: "cannot open: \(errnoText())") }
        defer { close(fd) }
        guard lseek(fd, off_t(start), SEEK_SET) == off_t(start) else {
            throw HubError.cache(path: incomplete, detail: "cannot seek: \(errnoText())")
        }
        let limit = metadata.size ?? configuration.maxFileBytes
        var written = start
        do {
            for try await buffer in response.body {
                guard written + Int64(buffer.readableBytes) <= limit else {
                    unlink(incomplete)
                    throw HubError.badResponse(
                        url: finalURL, detail: "\(file): the server sent more than \(limit) bytes")
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    try writeAll(fd, bytes, path: incomplete)
                    hasher.update(bufferPointer: bytes)
                }
                written += Int64(buffer.readableBytes)
                hashed = written
                progress?.advance(file: file, bytes: Int64(buffer.readableBytes))
            }
        } catch let error as HubError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw HubError.network(
                url: finalURL, detail: "the transfer of \(file) broke off after \(written) bytes (\(error))")
        }
        if let size = metadata.size, written < size {
            throw HubError.network(
                url: finalURL, detail: "the transfer of \(file) ended after \(written) of \(size) bytes")
        }
    }

    /// A hasher over the first `bytes` bytes of a file.
    private func hashPrefix(of path: String, bytes: Int64) throws -> (SHA256, Int64) {
        var hasher = SHA256()
        guard bytes > 0 else { return (hasher, 0) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HubError.cache(path: path, detail: "cannot open: \(errnoText())") }
        defer { close(fd) }
        var remaining = bytes
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let want = Int(min(Int64(chunk.count), remaining))
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HubError.cache(path: path, detail: "cannot read the partial download") }
            chunk.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            remaining -= Int64(n)
        }
        return (hasher, bytes)
    }
}

/// Whether a Location names a host (`scheme://host...` or `//host...`) rather than a path.
func isAbsoluteURL(_ location: String) -> Bool {
    location.hasPrefix("//")
        || (location.range(of: "://").map { range in
            location[..<range.lowerBound].allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
        } ?? false)
}

/// Whether two URLs share scheme, host and port.
func sameOrigin(_ a: String, _ b: String) -> Bool {
    guard let x = URL(string: a), let y = URL(string: b) else { return false }
    return x.scheme == y.scheme && x.host == y.host && x.port == y.port
}

/// Writes every byte, retrying short writes and EINTR.
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw HubError.cache(path: path, detail: "cannot write: \(errnoText())") }
        done += n
    }
}

/// huggingface_hub's ETag normalization: drop a weak `W/` prefix and the quotes.
func normalizedETag(_ raw: String) -> String {
    var tag = Substring(raw.trimmingCharacters(in: .whitespaces))
    if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
    return tag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
}

/// An ETag usable as a file name in blobs/: name characters only, not hidden.
func isSafeETag(_ tag: String) -> Bool {
    !tag.isEmpty && tag.utf8.count <= 128 && !tag.hasPrefix(".")
        && tag.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95 || c == 46
        }
}

/// 64 lowercase hex digits: the ETag of an LFS file is its SHA-256.
func isSHA256(_ tag: String) -> Bool {
    tag.utf8.count == 64 && tag.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
}

/// A repo file name that stays inside a snapshot folder.
func isSafeRelativePath(_ path: String) -> Bool {
    guard !path.isEmpty, path.utf8.count <= 1024, !path.hasPrefix("/"), !path.utf8.contains(0), !path.contains("\\")
    else { return false }
    return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
        $0 != "" && $0 != "." && $0 != ".."
    }
}

func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Percent-encodes everything but unreserved characters (huggingface_hub's quote(revision, safe="")).
func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        let c = Character(Unicode.Scalar(byte))
        if (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || "-._~".contains(c)
        {
            out.append(c)
        } else {
            out += "%" + hex([byte]).uppercased()
        }
    }
    return out
}

/// Percent-encodes each component of a path, keeping the slashes.
func percentEncodedPath(_ path: String) -> String {
    path.split(separator: "/", omittingEmptySubsequences: false).map { percentEncoded(String($0)) }.joined(
        separator: "/")
}
