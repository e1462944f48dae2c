// A fake Hugging Face Hub for the tests: a loopback HTTP server (SwiftNIO's
// HTTP/1 pipeline) with the hub's endpoints as huggingface_hub sees them,
//   GET  /api/models/ORG/NAME/revision/REV   {"sha", "siblings": [{"rfilename"}]}
//   HEAD/GET /ORG/NAME/resolve/REV/FILE      200 with ETag (git blob id) for small
//        files; 302 to a second server (the "CDN", another origin) with
//        X-Linked-Etag = sha256 and X-Linked-Size for LFS files
//   GET  /cdn/SHA256 on the CDN             the bytes, honouring Range: bytes=N-
// and switches for the failures a client must survive: a transfer cut off
// mid-body, a blob whose bytes do not match its hash, a repo that needs a
// token, files listed but missing. Every request is logged for the assertions.

import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A repo the fake hub serves.
struct FakeRepo {
    var files: [String: Data]
    /// Files served as LFS (redirected to the CDN, ETag = sha256).
    var lfs: Set<String> = []
    var commit: String = FakeRepo.randomCommit()
    var branches: [String: String] = [:]
    /// When set, hub requests need `Authorization: Bearer <token>` (else 401).
    var token: String?
    /// Listed in the file list but answered with 404.
    var ghosts: Set<String> = []

    static func randomCommit() -> String {
        (0..<40).map { _ in String("0123456789abcdef".randomElement() ?? "0") }.joined()
    }
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// git's blob id: sha1("blob <size>\0" + content), the ETag the hub sends for non-LFS files.
func gitBlobID(_ data: Data) -> String {
    Insecure.SHA1.hash(data: Data("blob \(data.count)\0".utf8) + data).map { String(format: "%02x", $0) }.joined()
}

final class FakeHub: @unchecked Sendable {
    enum Server: String { case hub, cdn }

    struct LoggedRequest {
        let server: Server
        let method: String
        let uri: String
        let headers: [String: String]
    }

    struct Response {
        var status: HTTPResponseStatus
        var headers: [(String, String)] = []
        var body = Data()
        /// Send the full Content-Length but only this many body bytes, then close.
        var cutAfter: Int?
    }

    private let lock = NSLock()
    private var repos: [String: FakeRepo] = [:]
    private var log: [LoggedRequest] = []
    /// sha256s whose next CDN transfer is cut off halfway.
    private var interruptNext: Set<String> = []
    /// sha256s whose CDN bytes are wrong (one byte flipped).
    private var corrupted: Set<String> = []
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channels: [Channel] = []
    private(set) var hubPort = 0
    private(set) var cdnPort = 0
    /// Old repo id -> new: requests for the old one get a relative 307 (as the hub answers for a renamed repo).
    private var renamed: [String: String] = [:]
    /// LFS redirects go to /cdn on the hub's own origin (an absolute URL) instead of the CDN server.
    private var lfsOnHubOrigin = false
    /// The CDN answers every GET with the whole file (200), as a server without range support does.
    private var ignoresRange = false

    init() throws {
        hubPort = try bind(.hub)
        cdnPort = try bind(.cdn)
    }

    var endpoint: String { "http://127.0.0.1:\(hubPort)" }

    /// LFS content by sha256, and each LFS file's sha256 (hashed once, when added).
    private var blobs: [String: Data] = [:]
    private var lfsHashes: [String: String] = [:]

    func add(_ id: String, _ repo: FakeRepo) {
        var hashes: [String: String] = [:]
        for file in repo.lfs { if let data = repo.files[file] { hashes[file] = sha256Hex(data) } }
        lock.withLock {
            repos[id] = repo
            for (file, sha) in hashes {
                lfsHashes[id + "/" + file] = sha
                blobs[sha] = repo.files[file]
            }
        }
    }

    func rename(_ old: String, to new: String) {
        lock.withLock { renamed[old] = new }
    }

    func ignoreRangeRequests() {
        lock.withLock { ignoresRange = true }
    }

    func serveLFSFromHubOrigin() {
        lock.withLock { lfsOnHubOrigin = true }
    }

    func interruptNextTransfer(of data: Data) {
        _ = lock.withLock { interruptNext.insert(sha256Hex(data)) }
    }

    func corrupt(_ data: Data) {
        _ = lock.withLock { corrupted.insert(sha256Hex(data)) }
    }

    var requests: [LoggedRequest] { lock.withLock { log } }

    func clearLog() {
        lock.withLock { log.removeAll() }
    }

    private var stopped = false

    func stop() {
        guard
            !lock.withLock({
                let was = stopped; stopped = true; return was
            })
        else { return }
        for channel in channels { try? channel.close().wait() }
        try? group.syncShutdownGracefully()
    }

    private func bind(_ server: Server) throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FakeHubHandler(hub: self, server: server))
                }
            }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        guard let port = channel.localAddress?.port else { throw CocoaError(.fileNoSuchFile) }
        return port
    }

    // MARK: - Routing (called on the event loop)

    func respond(_ server: Server, _ head: HTTPRequestHead) -> Response {
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name.lowercased()] = value }
        return lock.withLock {
            log.append(LoggedRequest(server: server, method: head.method.rawValue, uri: head.uri, headers: headers))
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
                $0.removingPercentEncoding ?? String($0)
            }
            switch server {
            case .cdn:
                guard parts.count == 2, parts[0] == "cdn" else { return Response(status: .notFound) }
                return cdn(sha: parts[1], range: headers["range"])
            case .hub:
                if parts.count == 2, parts[0] == "cdn" { return cdn(sha: parts[1], range: headers["range"]) }
                for (old, new) in renamed {
                    let oldPath = "/" + old + "/", apiPath = "/api/models/" + old + "/"
                    for prefix in [oldPath, apiPath] where path.hasPrefix(prefix) {
                        let target = prefix.replacingOccurrences(of: old, with: new) + path.dropFirst(prefix.count)
                        return Response(status: .temporaryRedirect, headers: [("Location", target)])
                    }
                }
                if parts.count >= 6, parts[0] == "api", parts[1] == "models", parts[4] == "revision" {
                    return api(repo: parts[2] + "/" + parts[3], revision: parts[5...].joined(separator: "/"), headers)
                }
                if parts.count >= 6, parts[0] == "api", parts[1] == "models", parts[4] == "tree" {
                    return tree(repo: parts[2] + "/" + parts[3], revision: parts[5], headers)
                }
                if parts.count >= 5, parts[2] == "resolve" {
                    return resolve(
                        repo: parts[0] + "/" + parts[1], revision: parts[3], file: parts[4...].joined(separator: "/"),
                        headers)
                }
                return Response(status: .notFound)
            }
        }
    }

    private func errorResponse(_ status: HTTPResponseStatus, code: String?) -> Response {
        var response = Response(status: status, body: Data("{\"error\": \"\(status.reasonPhrase)\"}".utf8))
        if let code { response.headers.append(("X-Error-Code", code)) }
        return response
    }

    /// The repo and commit for a request, or the error response the hub gives.
    private func check(_ id: String, _ revision: String, _ headers: [String: String]) -> Result<
        (FakeRepo, String), FakeError
    > {
        guard let repo = repos[id] else { return .failure(FakeError(errorResponse(.notFound, code: "RepoNotFound"))) }
        if let token = repo.token, headers["authorization"] != "Bearer \(token)" {
            return .failure(FakeError(errorResponse(.unauthorized, code: nil)))
        }
        let branches = repo.branches.isEmpty ? ["main": repo.commit] : repo.branches
        guard let commit = branches[revision] ?? (revision == repo.commit ? repo.commit : nil) else {
            return .failure(FakeError(errorResponse(.notFound, code: "RevisionNotFound")))
        }
        return .success((repo, commit))
    }

    private func api(repo id: String, revision: String, _ headers: [String: String]) -> Response {
        switch check(id, revision, headers) {
        case .failure(let error): return error.response
        case .success(let (repo, commit)):
            let names = Set(repo.files.keys).union(repo.ghosts).sorted()
            let siblings = names.map { ["rfilename": $0] }
            let json: [String: Any] = ["id": id, "modelId": id, "sha": commit, "private": false, "siblings": siblings]
            let body = (try? JSONSerialization.data(withJSONObject: json)) ?? Data()
            return Response(status: .ok, headers: [("Content-Type", "application/json")], body: body)
        }
    }

    /// The tree API (newer huggingface_hub's snapshot_download lists files with it): one page, every file.
    private func tree(repo id: String, revision: String, _ headers: [String: String]) -> Response {
        switch check(id, revision, headers) {
        case .failure(let error): return error.response
        case .success(let (repo, _)):
            let entries: [[String: Any]] = repo.files.keys.sorted().compactMap { name in
                guard let data = repo.files[name] else { return nil }
                var entry: [String: Any] = ["type": "file", "oid": gitBlobID(data), "size": data.count, "path": name]
                if let sha = lfsHashes[id + "/" + name] {
                    entry["lfs"] = ["oid": sha, "size": data.count, "pointerSize": 134]
                }
                return entry
            }
            let body = (try? JSONSerialization.data(withJSONObject: entries)) ?? Data()
            return Response(status: .ok, headers: [("Content-Type", "application/json")], body: body)
        }
    }

    private func resolve(repo id: String, revision: String, file: String, _ headers: [String: String]) -> Response {
        switch check(id, revision, headers) {
        case .failure(let error): return error.response
        case .success(let (repo, commit)):
            guard let data = repo.files[file] else { return errorResponse(.notFound, code: "EntryNotFound") }
            if let sha = lfsHashes[id + "/" + file] {
                return Response(
                    status: .found,
                    headers: [
                        (
                            "Location",
                            "http://127.0.0.1:\(lfsOnHubOrigin ? hubPort : cdnPort)/cdn/\(sha)?signature=fake"
                        ),
                        ("X-Repo-Commit", commit),
                        ("X-Linked-Etag", "\"\(sha)\""), ("X-Linked-Size", "\(data.count)"),
                        (
                            "ETag",
                            "\"\(gitBlobID(Data("version https://git-lfs.github.com/spec/v1\noid sha256:\(sha)\n".utf8)))\""
                        ),
                        ("Content-Length", "0")
                    ])
            }
            return Response(
                status: .ok,
                headers: [
                    ("ETag", "\"\(gitBlobID(data))\""), ("X-Repo-Commit", commit), ("Content-Length", "\(data.count)")
                ],
                body: data)
        }
    }

    private func cdn(sha: String, range: String?) -> Response {
        guard var data = blobs[sha] else {
            return Response(status: .notFound)
        }
        if corrupted.contains(sha), !data.isEmpty { data[data.startIndex] ^= 0xFF }
        var response = Response(status: .ok, headers: [("ETag", "\"\(sha)\"")])
        var start = 0
        if let range, !ignoresRange, range.hasPrefix("bytes="), range.hasSuffix("-"),
            let from = Int(range.dropFirst(6).dropLast())
        {
            guard from < data.count else {
                return Response(status: .init(statusCode: 416), headers: [("Content-Range", "bytes */\(data.count)")])
            }
            start = from
            response.status = .partialContent
            response.headers.append(("Content-Range", "bytes \(from)-\(data.count - 1)/\(data.count)"))
        }
        response.body = data.subdata(in: start..<data.count)
        response.headers.append(("Content-Length", "\(response.body.count)"))
        if interruptNext.remove(sha) != nil { response.cutAfter = response.body.count / 2 }
        return response
    }
}

struct FakeError: Error {
    let response: FakeHub.Response
    init(_ response: FakeHub.Response) { self.response = response }
}

/// One connection's requests, answered from the hub's state.
final class FakeHubHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let hub: FakeHub
    private let server: FakeHub.Server
    private var head: HTTPRequestHead?

    init(hub: FakeHub, server: FakeHub.Server) {
        self.hub = hub
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let response = hub.respond(server, head)
            var headers = HTTPHeaders()
            for (name, value) in response.headers { headers.add(name: name, value: value) }
            if !headers.contains(name: "Content-Length") {
                headers.add(name: "Content-Length", value: "\(response.body.count)")
            }
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
                promise: nil)
            let sendsBody = head.method != .HEAD && !response.body.isEmpty
            if let cut = response.cutAfter, sendsBody {
                // Part of the body, then the connection drops: the client sees a broken transfer.
                let part = context.channel.allocator.buffer(bytes: response.body.prefix(cut))
                let channel = context.channel
                // The close waits a moment so the client takes in what was sent before it sees the drop.
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(part)))).whenComplete { _ in
                    channel.eventLoop.scheduleTask(in: .milliseconds(200)) { channel.close(promise: nil) }
                }
                return
            }
            if sendsBody {
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                    promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
