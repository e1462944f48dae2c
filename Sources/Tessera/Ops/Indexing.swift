// Basic indexing as zero-copy strided views: integers, ranges, strides,
// newAxis and ellipsis, with negative indices counted from the end.
//
//     x[0]              first row (axis removed)
//     x[0..., 1..<3]    columns 1 and 2
//     x[.ellipsis, -1]  last entry of the last axis
//     x[.stride(by: -1)]  reversed first axis
//     x[.newAxis, 0...] a new leading axis of size 1

/// One entry of a subscript: `.index(i)`, `.slice(start:end:step:)`,
/// `.stride(from:to:by:)`, `.newAxis`, `.ellipsis`, or an Int or range.
public struct TensorIndex: Sendable {
    enum Kind: Sendable {
        /// An integer index; removes the axis.
        case index(Int)
        /// `start ..< end` by `step` (nil bounds mean the whole axis in the step's direction).
        case slice(start: Int?, end: Int?, step: Int)
        /// A new axis of size 1.
        case newAxis
        /// As many full axes as needed.
        case ellipsis
    }

    let kind: Kind
}

/// Something a Tensor subscript accepts.
public protocol TensorIndexConvertible: Sendable {
    var tensorIndex: TensorIndex { get }
}

extension TensorIndex: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { self }
}

// The spellings of a TensorIndex, usable with a leading dot inside a subscript.
extension TensorIndexConvertible where Self == TensorIndex {
    /// An integer index; removes the axis.
    public static func index(_ i: Int) -> TensorIndex { TensorIndex(kind: .index(i)) }
    /// `start ..< end` by `step`; nil bounds cover the axis in the step's direction.
    public static func slice(start: Int? = nil, end: Int? = nil, step: Int = 1) -> TensorIndex {
        TensorIndex(kind: .slice(start: start, end: end, step: step))
    }
    /// Every `step`-th element of an axis, optionally between bounds.
    public static func stride(from start: Int? = nil, to end: Int? = nil, by step: Int) -> TensorIndex {
        slice(start: start, end: end, step: step)
    }
    /// A new axis of size 1.
    public static var newAxis: TensorIndex { TensorIndex(kind: .newAxis) }
    /// As many full axes as needed.
    public static var ellipsis: TensorIndex { TensorIndex(kind: .ellipsis) }
}
extension Int: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .index(self) }
}
extension Range<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, end: upperBound, step: 1) }
}
extension ClosedRange<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, end: upperBound == -1 ? nil : upperBound + 1, step: 1) }
}
extension PartialRangeFrom<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, end: nil, step: 1) }
}
extension PartialRangeUpTo<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: nil, end: upperBound, step: 1) }
}
extension PartialRangeThrough<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: nil, end: upperBound == -1 ? nil : upperBound + 1, step: 1) }
}

extension Tensor {
    public subscript(_ indices: any TensorIndexConvertible...) -> Tensor {
        self[indices.map(\.tensorIndex)]
    }

    public subscript(_ indices: [TensorIndex]) -> Tensor {
        let ellipses = indices.filter { if case .ellipsis = $0.kind { return true } else { return false } }.count
        opPrecondition(ellipses <= 1, "index", "at most one ellipsis is allowed")
        let consuming = indices.filter {
            switch $0.kind {
            case .index, .slice: return true
            case .newAxis, .ellipsis: return false
            }
        }.count
        opPrecondition(consuming <= ndim, "index", "too many indices (\(consuming)) for shape \(shape)")

        // Expand the ellipsis (or pad at the end) to full slices.
        var full: [TensorIndex] = []
        for entry in indices {
            if case .ellipsis = entry.kind {
                full += [TensorIndex](repeating: .slice(start: nil, end: nil, step: 1), count: ndim - consuming)
            } else {
                full.append(entry)
            }
        }
        if ellipses == 0 {
            full += [TensorIndex](repeating: .slice(start: nil, end: nil, step: 1), count: ndim - consuming)
        }

        // One slice over the input axes, then a reshape that drops integer
        // axes and inserts new ones.
        var start: [Int] = [], end: [Int] = [], step: [Int] = []
        var resultShape: [Int] = []
        var axis = 0
        for entry in full {
            switch entry.kind {
            case .newAxis:
                resultShape.append(1)
            case .index(let i):
                let n = shape[axis]
                let j = i < 0 ? i + n : i
                opPrecondition(j >= 0 && j < n, "index", "index \(i) is out of bounds for axis \(axis) with size \(n)")
                start.append(j)
                end.append(j + 1)
                step.append(1)
                axis += 1
            case .slice(let s, let e, let st):
                opPrecondition(st != 0, "index", "slice step cannot be zero")
                let (lo, hi) = clampedSliceBounds(s, e, st, shape[axis])
                start.append(lo)
                end.append(hi)
                step.append(st)
                let count = st > 0 ? Swift.max(0, (hi - lo + st - 1) / st) : Swift.max(0, (lo - hi - st - 1) / -st)
                resultShape.append(count)
                axis += 1
            case .ellipsis:
                break
            }
        }
        return slice(start: start, end: end, stride: step).reshaped(resultShape)
    }
}

/// numpy's slice bound rules for an axis of size n.
func clampedSliceBounds(_ start: Int?, _ end: Int?, _ step: Int, _ n: Int) -> (Int, Int) {
    func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { Swift.min(Swift.max(v, lo), hi) }
    if step > 0 {
        let s = start.map { clamp($0 < 0 ? $0 + n : $0, 0, n) } ?? 0
        let e = end.map { clamp($0 < 0 ? $0 + n : $0, 0, n) } ?? n
        return (s, e)
    } else {
        let s = start.map { clamp($0 < 0 ? $0 + n : $0, -1, n - 1) } ?? n - 1
        let e = end.map { clamp($0 < 0 ? $0 + n : $0, -1, n - 1) } ?? -1
        return (s, e)
    }
}
