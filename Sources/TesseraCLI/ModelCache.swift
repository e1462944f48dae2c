// The models on this machine: Tessera's own cache ($TESSERA_CACHE or
// ~/.cache/tessera: models/ and bench/) and the Hugging Face hub cache
// ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub, whose
// models--ORG--NAME folders hold blobs/ and snapshots/). `tessera models`
// lists them with sizes and formats and removes one by its exact name.

import Foundation
import TesseraHub

/// One cached model.
struct CachedModel: Equatable {
    /// What `tessera models rm` takes: a file or folder name, or ORG/NAME for the hub.
    let name: String
    /// "gguf", "mlx (4-bit)", "safetensors", "hf hub", ...
    let format: String
    let bytes: Int64
    /// The file or folder that holds it (what `rm` deletes).
    let path: String
    /// "tessera" or "hf".
    let source: String
}

enum ModelCache {
    /// The folders searched, from the environment as the CLI and huggingface_hub read it.
    static func folders(environment: [String: String] = ProcessInfo.processInfo.environment) -> (
        tessera: String, hub: String
    ) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let tessera = environment["TESSERA_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.cache/tessera"
        // The folder TesseraHub downloads into, as huggingface_hub chooses it.
        return (tessera, HubConfiguration.cacheDirectory(environment: environment))
    }

    /// Every model in the two caches, sorted by source and name.
    static func list(tessera: String, hub: String) -> [CachedModel] {
        var found: [CachedModel] = []
        let fm = FileManager.default
        for sub in ["models", "bench"] {
            let dir = tessera + "/" + sub
            for entry in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where !entry.hasPrefix(".") {
                let path = dir + "/" + entry
                guard let format = format(of: path) else { continue }
                found.append(
                    CachedModel(name: entry, format: format, bytes: size(of: path), path: path, source: "tessera"))
            }
        }
        for entry in (try? fm.contentsOfDirectory(atPath: hub)) ?? [] where entry.hasPrefix("models--") {
            let parts = entry.dropFirst("models--".count).components(separatedBy: "--")
            let path = hub + "/" + entry
            // Blobs hold the bytes; snapshots only link to them.
            found.append(
                CachedModel(
                    name: parts.joined(separator: "/"), format: hubFormat(path), bytes: size(of: path + "/blobs"),
                    path: path, source: "hf"))
        }
        return found.sorted { ($0.source, $0.name) < ($1.source, $1.name) }
    }

    /// A hub repo's format from its snapshots: "gguf (hf hub)" when one holds a .gguf file,
    /// a snapshot folder's format with " (hf hub)", else "hf hub".
    static func hubFormat(_ repoFolder: String) -> String {
        let fm = FileManager.default
        let snapshots = repoFolder + "/snapshots"
        for commit in ((try? fm.contentsOfDirectory(atPath: snapshots)) ?? []).sorted() {
            let folder = snapshots + "/" + commit
            let files = (try? fm.contentsOfDirectory(atPath: folder)) ?? []
            if files.contains(where: { $0.hasSuffix(".gguf") }) { return "gguf (hf hub)" }
            if let folderFormat = format(of: folder) { return folderFormat + " (hf hub)" }
        }
        return "hf hub"
    }

    /// A GGUF file or a model folder's format; nil for anything else.
    static func format(of path: String) -> String? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return nil }
        if !isFolder.boolValue { return path.hasSuffix(".gguf") ? "gguf" : nil }
        guard let data = FileManager.default.contents(atPath: path + "/config.json"), data.count < 1 << 20,
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        if let q = json["quantization"] as? [String: Any], let bits = q["bits"] as? Int { return "mlx (\(bits)-bit)" }
        if let dtype = json["torch_dtype"] as? String { return "safetensors (\(dtype))" }
        return "safetensors"
    }

    /// Bytes of a file, or of the regular files under a folder (links not followed).
    static func size(of path: String) -> Int64 {
        let fm = FileManager.default
        guard let attributes = try? fm.attributesOfItem(atPath: path) else { return 0 }
        if attributes[.type] as? FileAttributeType != .typeDirectory {
            return (attributes[.size] as? NSNumber)?.int64Value ?? 0
        }
        var total: Int64 = 0
        for entry in (try? fm.subpathsOfDirectory(atPath: path)) ?? [] {
            guard let a = try? fm.attributesOfItem(atPath: path + "/" + entry),
                a[.type] as? FileAttributeType == .typeRegular
            else { continue }
            total += (a[.size] as? NSNumber)?.int64Value ?? 0
        }
        return total
    }

    /// "93.2 MB"-style sizes (decimal units, as huggingface-cli scan-cache).
    static func describe(bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes), unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
