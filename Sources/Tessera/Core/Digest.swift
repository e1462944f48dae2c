// Cache keys for code that gets compiled, cached on disk and loaded: SHA-256
// (swift-crypto), so two different sources never share a key, whatever they hold.

import Crypto

/// The SHA-256 of `parts` (each followed by a 0 byte, so ["ab", "c"] and
/// ["a", "bc"] differ), as 64 lowercase hex digits.
func sha256Hex(_ parts: [String]) -> String {
    var hasher = SHA256()
    for part in parts {
        hasher.update(data: Array(part.utf8))
        hasher.update(data: [0])
    }
    return hexDigits(hasher.finalize())
}

/// The SHA-256 of `text`'s UTF-8 bytes, as 64 lowercase hex digits.
func sha256Hex(_ text: String) -> String {
    hexDigits(SHA256.hash(data: Array(text.utf8)))
}

private func hexDigits(_ digest: SHA256.Digest) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
