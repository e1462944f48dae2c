// Where the hub is and where its cache lives, read from the environment as
// huggingface_hub reads it: HF_ENDPOINT, HF_HUB_CACHE (or the older
// HUGGINGFACE_HUB_CACHE), HF_HOME (default $XDG_CACHE_HOME/huggingface or
// ~/.cache/huggingface), HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, else the
// token file $HF_HOME/token), HF_HUB_OFFLINE (1/ON/YES/TRUE).

import Foundation

/// The hub endpoint, cache folder, token and offline switch.
public struct HubConfiguration: Sendable, Equatable {
    /// The hub's base URL without a trailing slash, e.g. https://huggingface.co.
    public var endpoint: String
    /// The cache folder holding models--ORG--NAME/{blobs,snapshots,refs}.
    public var cacheDirectory: String
    /// Sent as `Authorization: Bearer <token>` to the endpoint's host.
    public var token: String?
    /// Resolve from the cache only; never touch the network.
    public var offline: Bool
    /// Files downloaded at once.
    public var maxConcurrentDownloads: Int
    /// Attempts per file when a transfer breaks off (each resumes where the last stopped).
    public var maxAttempts: Int
    /// The largest file accepted (bytes); a larger announced or received size is refused.
    public var maxFileBytes: Int64
    /// How long to keep trying to connect (huggingface_hub waits 10 s for metadata).
    public var connectTimeout: Duration

    public static let defaultEndpoint = "https://huggingface.co"

    public init(
        endpoint: String = HubConfiguration.defaultEndpoint, cacheDirectory: String, token: String? = nil,
        offline: Bool = false, maxConcurrentDownloads: Int = 4, maxAttempts: Int = 5, maxFileBytes: Int64 = 1 << 40,
        connectTimeout: Duration = .seconds(10)
    ) {
        var endpoint = endpoint
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.cacheDirectory = cacheDirectory
        self.token = token
        self.offline = offline
        self.maxConcurrentDownloads = max(1, maxConcurrentDownloads)
        self.maxAttempts = max(1, maxAttempts)
        self.maxFileBytes = maxFileBytes
        self.connectTimeout = connectTimeout
    }

    /// The configuration huggingface_hub would use in this environment.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> HubConfiguration
    {
        func value(_ name: String) -> String? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            return v
        }
        let home = hfHome(environment)
        let cache = cacheDirectory(environment: environment)
        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let path = value("HF_TOKEN_PATH") ?? home + "/token"
            // A token file is a few dozen bytes; anything large is not one.
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let size = attributes[.size] as? NSNumber, size.intValue < 4096,
                let data = FileManager.default.contents(atPath: path)
            {
                let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                token = text.isEmpty ? nil : text
            }
        }
        let offlineValue = (value("HF_HUB_OFFLINE") ?? value("TRANSFORMERS_OFFLINE") ?? "").uppercased()
        return HubConfiguration(
            endpoint: value("HF_ENDPOINT") ?? defaultEndpoint, cacheDirectory: cache, token: token,
            offline: ["1", "ON", "YES", "TRUE"].contains(offlineValue))
    }

    /// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
    static func hfHome(_ environment: [String: String]) -> String {
        if let home = environment["HF_HOME"], !home.isEmpty { return home }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/huggingface" }
        let user = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return user + "/.cache/huggingface"
    }

    /// The hub cache folder for this environment (what `tessera models` lists).
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        for name in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"] {
            if let v = environment[name], !v.isEmpty { return v }
        }
        return hfHome(environment) + "/hub"
    }
}
