// The program's startup code pages, dropped from the resident set once a model
// is loaded. Loading runs code that generation never runs again (argument
// parsing, the GGUF and tokenizer parsers, Foundation's start-up), the dynamic
// loader reads the relocation and symbol tables once, and the kernel maps up to
// 16 neighbouring pages of the file on each fault: 26 MiB of a `generate`'s
// 152 MiB peak were the executable's pages (docs/PERFORMANCE.md). The pages stay
// in the page cache; the ones generation runs fault back in.

import Foundation

enum CodePages {
    /// One mapping of /proc/self/smaps: its range, permissions, file, and
    /// resident and anonymous (private copy-on-write) kilobytes.
    struct Mapping {
        var start: UInt
        var end: UInt
        var permissions: String
        var path: String
        var residentKB = 0
        var anonymousKB = 0
    }

    /// The mappings of /proc/self/smaps ([] where it cannot be read).
    static func mappings() -> [Mapping] {
        guard let text = try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8) else { return [] }
        var out: [Mapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            if fields.count >= 5, !fields[0].hasSuffix(":") {
                let range = fields[0].split(separator: "-")
                guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16)
                else { continue }
                let path = fields.count == 6 ? fields[5].trimmingCharacters(in: .whitespaces) : ""
                out.append(Mapping(start: start, end: end, permissions: String(fields[1]), path: path))
            } else if !out.isEmpty, fields.count >= 2, let kb = Int(fields[1]) {
                if fields[0] == "Rss:" { out[out.count - 1].residentKB = kb }
                if fields[0] == "Anonymous:" { out[out.count - 1].anonymousKB = kb }
            }
        }
        return out
    }

    /// The mappings whose pages can be dropped and faulted back unchanged:
    /// read-only (not writable), private, of a file that also has an
    /// executable mapping (the program, its shared libraries), resident, and
    /// holding no anonymous page (a relocated RELRO segment is skipped: its
    /// copies would be lost).
    static func releasable(_ all: [Mapping]) -> [Mapping] {
        let codeFiles = Set(all.filter { $0.path.hasPrefix("/") && $0.permissions.contains("x") }.map(\.path))
        return all.filter {
            codeFiles.contains($0.path) && $0.permissions.count == 4 && !$0.permissions.contains("w")
                && $0.permissions.hasSuffix("p") && $0.anonymousKB == 0 && $0.residentKB > 0
        }
    }

    /// Drops the resident pages of the ``releasable(_:)`` mappings
    /// (madvise MADV_DONTNEED: the kernel maps a page back from the page cache
    /// when it is next read or run). Returns the bytes they had resident.
    @discardableResult
    static func release() -> Int {
        var released = 0
        for m in releasable(mappings()) {
            guard let p = UnsafeMutableRawPointer(bitPattern: m.start), m.end > m.start else { continue }
            if madvise(p, Int(m.end - m.start), Int32(MADV_DONTNEED)) == 0 { released += m.residentKB * 1024 }
        }
        return released
    }
}
