// Max and average pooling over the spatial axes of channels-last inputs
// (N, L, C) / (N, H, W, C), MLX's definitions: the stride defaults to the
// kernel size; padding pads both sides with -inf (max) or 0 (average, so
// padded zeros count in the mean, as MLX and torch's count_include_pad).
// Windows are strided slices, one per kernel tap, reduced together.

import Tessera

enum PoolKind {
    case max, average
}

/// Pools x (N, spatial..., C) with windows `kernel` and `stride` per spatial axis.
func pool(_ x: Tensor, kernel: [Int], stride: [Int], padding: [Int], kind: PoolKind, _ op: String) -> Tensor {
    let rank = kernel.count
    precondition(x.ndim == rank + 2, "[\(op)] expects \(rank + 2) axes (N, spatial..., C), got \(x.shape)")
    precondition(
        kernel.allSatisfy { $0 > 0 } && stride.allSatisfy { $0 > 0 } && padding.allSatisfy { $0 >= 0 },
        "[\(op)] kernel \(kernel) and stride \(stride) must be positive, padding \(padding) non-negative")
    var input = x
    if padding.contains(where: { $0 > 0 }) {
        let widths = [(0, 0)] + padding.map { ($0, $0) } + [(0, 0)]
        let fill: Float = kind == .max ? -Float.infinity : 0
        input = x.padded(widths.map { (before: $0.0, after: $0.1) }, value: Tensor(fill).asType(x.dtype))
    }
    let spatial = Array(input.shape[1...rank])
    let out = (0..<rank).map { (spatial[$0] - kernel[$0]) / stride[$0] + 1 }
    precondition(out.allSatisfy { $0 > 0 }, "[\(op)] kernel \(kernel) is larger than the padded input \(spatial)")
    var taps: [Tensor] = []
    func visit(_ axis: Int, _ offsets: [Int]) {
        if axis == rank {
            var index: [TensorIndex] = [.slice()]
            for a in 0..<rank {
                index.append(.stride(from: offsets[a], to: offsets[a] + stride[a] * (out[a] - 1) + 1, by: stride[a]))
            }
            index.append(.slice())
            taps.append(input[index])
            return
        }
        for k in 0..<kernel[axis] { visit(axis + 1, offsets + [k]) }
    }
    visit(0, [])
    let windows = stacked(taps, axis: 0)
    switch kind {
    case .max: return windows.max(axis: 0)
    case .average: return windows.mean(axis: 0)
    }
}

/// Max pooling over L of (N, L, C).
public final class MaxPool1d: Module, UnaryLayer {
    public let kernelSize: Int, stride: Int, padding: Int
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        pool(x, kernel: [kernelSize], stride: [stride], padding: [padding], kind: .max, "MaxPool1d")
    }
}

/// Average pooling over L of (N, L, C).
public final class AvgPool1d: Module, UnaryLayer {
    public let kernelSize: Int, stride: Int, padding: Int
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        pool(x, kernel: [kernelSize], stride: [stride], padding: [padding], kind: .average, "AvgPool1d")
    }
}

/// Max pooling over H, W of (N, H, W, C).
public final class MaxPool2d: Module, UnaryLayer {
    public let kernelSize: IntOrPair, stride: IntOrPair, padding: IntOrPair
    public init(kernelSize: IntOrPair, stride: IntOrPair? = nil, padding: IntOrPair = 0) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        pool(x, kernel: kernelSize.values, stride: stride.values, padding: padding.values, kind: .max, "MaxPool2d")
    }
}

/// Average pooling over H, W of (N, H, W, C).
public final class AvgPool2d: Module, UnaryLayer {
    public let kernelSize: IntOrPair, stride: IntOrPair, padding: IntOrPair
    public init(kernelSize: IntOrPair, stride: IntOrPair? = nil, padding: IntOrPair = 0) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        pool(x, kernel: kernelSize.values, stride: stride.values, padding: padding.values, kind: .average, "AvgPool2d")
    }
}

extension IntOrPair {
    var values: [Int] { [first, second] }
}
