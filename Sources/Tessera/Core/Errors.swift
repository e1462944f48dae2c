// Errors: what Tessera throws for conditions that come from outside the
// program (memory, libraries, files). Programmer errors at op construction
// trap instead, through `opPrecondition`, with the op and shapes named.

/// Errors Tessera reports by throwing.
public enum TesseraError: Error, CustomStringConvertible, Equatable {
    /// An allocation would pass the memory limit even after the cache was freed.
    case outOfMemory(requested: Int, active: Int, limit: Int, device: String)
    /// A device that cannot run (no driver, no library), with the reason.
    case deviceUnavailable(String)
    /// A generated kernel could not be built or loaded (compiler missing or failing).
    case compileFailed(String)
    /// A library opened at run time (LAPACK, BLAS...) that could not be found
    /// or lacks a symbol; names the library and how to install it.
    case libraryUnavailable(String)
    /// Data found at evaluation that the op cannot compute with (an index out
    /// of range, a singular or non-positive-definite matrix, a LAPACK failure).
    case invalidData(op: String, reason: String)
    /// A device call that failed (a CUDA driver or NVRTC error), with the call and message.
    case deviceError(String)

    public var description: String {
        switch self {
        case let .outOfMemory(requested, active, limit, device):
            return "out of memory on \(device): requested \(requested) bytes with \(active) active, limit \(limit) "
                + "(raise it with Memory.setMemoryLimit)"
        case let .deviceUnavailable(reason):
            return "device unavailable: \(reason)"
        case let .compileFailed(reason):
            return "kernel compilation failed: \(reason)"
        case let .libraryUnavailable(reason):
            return "library unavailable: \(reason)"
        case let .invalidData(op, reason):
            return "[\(op)] \(reason)"
        case let .deviceError(message):
            return "device error: \(message)"
        }
    }
}

/// Traps with a message naming the op, like Swift's own Array does for a bad index.
@inline(__always)
func opPrecondition(
    _ condition: @autoclosure () -> Bool, _ op: String, _ message: @autoclosure () -> String,
    file: StaticString = #file, line: UInt = #line
) {
    if !condition() { fatalError("[\(op)] \(message())", file: file, line: line) }
}
