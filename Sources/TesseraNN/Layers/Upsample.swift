// Upsampling of channels-last inputs (N, spatial..., C) by a scale factor per
// spatial axis: nearest neighbour, or (multi)linear interpolation with or
// without aligned corners; MLX's index rules (which match torch's
// `interpolate` for nearest and for linear/bilinear).

import Tessera

/// Upsamples the spatial axes of (N, L, C) or (N, H, W, C).
///
/// ```swift
/// let up = Upsample(scaleFactor: 2, mode: .linear(alignCorners: false))
/// let y = up(x)   // (N, 2H, 2W, C)
/// ```
public final class Upsample: Module, UnaryLayer {
    public enum Mode: Sendable {
        case nearest
        case linear(alignCorners: Bool)
    }

    public let scaleFactor: [Double]?
    let scale: Double
    public let mode: Mode

    /// One scale for every spatial axis.
    public init(scaleFactor: Double, mode: Mode = .nearest) {
        (self.scale, self.scaleFactor, self.mode) = (scaleFactor, nil, mode)
    }

    /// One scale per spatial axis.
    public init(scaleFactors: [Double], mode: Mode = .nearest) {
        (self.scale, self.scaleFactor, self.mode) = (0, scaleFactors, mode)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let dims = x.ndim - 2
        precondition(dims >= 1, "[Upsample] needs at least one spatial axis, got \(x.shape)")
        let scales = scaleFactor ?? Array(repeating: scale, count: dims)
        precondition(scales.count == dims, "[Upsample] \(scales.count) scales for \(dims) spatial axes")
        var out = x
        for (i, s) in scales.enumerated() {
            let axis = i + 1, n = x.dim(axis), m = Int(s * Double(n))
            switch mode {
            case .nearest:
                out = out.take(nearestIndices(n, m), axis: axis)
            case .linear(let alignCorners):
                let (lo, hi, w) = linearIndices(n, m, scale: s, alignCorners: alignCorners)
                var wShape = [Int](repeating: 1, count: x.ndim)
                wShape[axis] = m
                let weight = w.reshaped(wShape).asType(x.dtype)
                out = out.take(lo, axis: axis) * (1 - weight) + out.take(hi, axis: axis) * weight
            }
        }
        return out
    }

    /// MLX: for upsampling, round((i + 0.5) n/m - 0.5); else floor(i n/m).
    private func nearestIndices(_ n: Int, _ m: Int) -> Tensor {
        let i = Tensor.arange(0, Double(m))
        let f = m > n ? round((i + 0.5) * Float(Double(n) / Double(m)) - 0.5) : floor(i * Float(Double(n) / Double(m)))
        return f.asType(.int32)
    }

    private func linearIndices(_ n: Int, _ m: Int, scale: Double, alignCorners: Bool) -> (Tensor, Tensor, Tensor) {
        let i = Tensor.arange(0, Double(m))
        var pos: Tensor
        if alignCorners {
            pos = i * Float(Double(n - 1) / Double(Swift.max(m - 1, 1)))
        } else {
            let step = 1 / scale
            let start = (Double(m - 1) * step - Double(n) + 1) / 2
            pos = i * Float(step) - Float(start)
        }
        pos = pos.clip(min: Float(0), max: Float(n - 1))
        let lo = floor(pos), hi = ceil(pos)
        return (lo.asType(.int32), hi.asType(.int32), pos - lo)
    }
}
