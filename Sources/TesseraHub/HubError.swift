// What can go wrong between Tessera and a Hugging Face hub: each case names
// the repo, revision or file involved and says what to do about it.

/// A typed failure of a hub resolution or download.
public enum HubError: Error, Equatable, CustomStringConvertible {
    /// `ORG/NAME[@REVISION]` could not be parsed or is not a valid repo id.
    case invalidReference(String)
    /// 401/403: the repo is private or gated, or the token was refused.
    case unauthorized(repo: String, status: Int, hasToken: Bool)
    /// 404 for the repo or the revision (from the revision API).
    case repositoryNotFound(repo: String, revision: String)
    /// 404 for one file of a revision.
    case fileNotFound(repo: String, revision: String, file: String)
    /// The repo has nothing Tessera loads, or the GGUF choice matches no file (or several).
    case noLoadableFiles(repo: String, detail: String)
    /// Connection, DNS, timeout, or a transfer that kept failing.
    case network(url: String, detail: String)
    /// Another HTTP status, or a malformed answer (bad JSON, missing headers, sizes out of bounds).
    case badResponse(url: String, detail: String)
    /// HF_HUB_OFFLINE (or no network) and the cache lacks what is needed.
    case notCached(repo: String, revision: String, detail: String)
    /// A downloaded file's SHA-256 differs from its ETag (the partial file is deleted).
    case hashMismatch(file: String, expected: String, actual: String)
    /// A cache folder or file could not be written.
    case cache(path: String, detail: String)

    public var description: String {
        switch self {
        case .invalidReference(let text):
            return "\(text) is not a Hugging Face repo id (ORG/NAME, optionally @REVISION)"
        case .unauthorized(let repo, let status, let hasToken):
            let hint =
                hasToken
                ? "the token in HF_TOKEN was refused or lacks access; accept the model's terms on its page if it is gated"
                : "it is private or gated: set HF_TOKEN to a token with access (and accept the model's terms on its page)"
            return "\(repo): access denied (HTTP \(status)); \(hint)"
        case .repositoryNotFound(let repo, let revision):
            return "\(repo)@\(revision): no such model repo or revision on the hub (or it is private: set HF_TOKEN)"
        case .fileNotFound(let repo, let revision, let file):
            return "\(repo)@\(revision): the hub has no file \(file)"
        case .noLoadableFiles(let repo, let detail):
            return "\(repo): \(detail)"
        case .network(let url, let detail):
            return "cannot reach \(url): \(detail) (set HF_HUB_OFFLINE=1 to use the cache only)"
        case .badResponse(let url, let detail):
            return "unexpected answer from \(url): \(detail)"
        case .notCached(let repo, let revision, let detail):
            return
                "\(repo)@\(revision) is not in the hub cache (\(detail)); run once without HF_HUB_OFFLINE to download it"
        case .hashMismatch(let file, let expected, let actual):
            return
                "\(file): downloaded content has SHA-256 \(actual), expected \(expected); the partial file was removed"
        case .cache(let path, let detail):
            return "hub cache: \(path): \(detail)"
        }
    }
}
