// `ORG/NAME[@REVISION][:QUANT]`: a model repo on the hub, the branch, tag or
// commit to take (default main), and optionally a GGUF quantization to pick
// (as llama.cpp's `-hf ORG/NAME:Q4_K_M`). Repo ids follow huggingface_hub's
// rules: letters, digits, `-`, `_`, `.`; no `--` or `..`; at most 96 characters.

/// A model repo and revision on the hub.
public struct RepoReference: Sendable, Equatable, CustomStringConvertible {
    public let repo: String
    public let revision: String
    /// A GGUF quantization pattern given after `:` (e.g. Q4_K_M), if any.
    public let quantization: String?

    public static let defaultRevision = "main"

    public init(repo: String, revision: String = RepoReference.defaultRevision, quantization: String? = nil) throws {
        guard Self.isValidRepoID(repo) else { throw HubError.invalidReference(repo) }
        guard Self.isValidRevision(revision) else { throw HubError.invalidReference("\(repo)@\(revision)") }
        if let q = quantization, !Self.isValidPattern(q) { throw HubError.invalidReference("\(repo):\(q)") }
        self.repo = repo
        self.revision = revision
        self.quantization = quantization
    }

    /// Parses `ORG/NAME[@REVISION][:QUANT]`; nil when the text is not of that form.
    public static func parse(_ text: String) -> RepoReference? {
        var rest = Substring(text)
        var quantization: String?
        if let colon = rest.lastIndex(of: ":") {
            quantization = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        var revision = defaultRevision
        if let at = rest.firstIndex(of: "@") {
            revision = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        return try? RepoReference(repo: String(rest), revision: revision, quantization: quantization)
    }

    /// `models--ORG--NAME`, the repo's folder in the cache.
    public var cacheFolderName: String {
        "models--" + repo.split(separator: "/").joined(separator: "--")
    }

    /// Whether `revision` is a full commit hash (40 hex digits).
    public var revisionIsCommit: Bool { Self.isCommitHash(revision) }

    public var description: String {
        var text = revision == Self.defaultRevision ? repo : "\(repo)@\(revision)"
        if let quantization { text += ":" + quantization }
        return text
    }

    static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    private static func isNameCharacter(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95 || c == 46
    }

    /// ORG/NAME, each part of name characters, not starting or ending with `-` or `.`.
    static func isValidRepoID(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, s.utf8.count <= 96, !s.contains("--"), !s.contains(".."), !s.hasSuffix(".git") else {
            return false
        }
        return parts.allSatisfy { part in
            guard let first = part.utf8.first, let last = part.utf8.last else { return false }
            return part.utf8.allSatisfy(isNameCharacter) && first != 45 && first != 46 && last != 45 && last != 46
        }
    }

    /// A branch, tag or commit: name characters and `/` (as in refs/pr/1), no `..`, no leading `/`.
    static func isValidRevision(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 200 && !s.contains("..") && !s.hasPrefix("/") && !s.hasSuffix("/")
            && !s.contains("//") && s.utf8.allSatisfy { isNameCharacter($0) || $0 == 47 }
    }

    static func isValidPattern(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 200 && s.utf8.allSatisfy(isNameCharacter)
    }
}
