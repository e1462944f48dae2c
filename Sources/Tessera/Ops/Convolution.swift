// Convolutions in MLX's channels-last layout: input (N, L, C_in) / (N, H, W,
// C_in), weight (C_out, K, C_in/groups) / (C_out, KH, KW, C_in/groups),
// output (N, L_out, C_out) / (N, H_out, W_out, C_out). Built from existing
// primitives: zero padding (sliceUpdate), im2col as KH*KW strided slices
// concatenated, and one batched matmul per group. 1-D runs as 2-D with H = 1.
// Transposed convolutions are the equivalent direct convolution over the
// input with stride-1 zeros inserted, padded by dilation*(K-1) - padding,
// with the kernel flipped.

/// One value for every spatial axis, or one per axis: `stride: 2` or `stride: [2, 1]`.
public struct IntOrPair: Sendable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    public let first: Int
    public let second: Int

    public init(_ value: Int) { (first, second) = (value, value) }
    public init(_ first: Int, _ second: Int) { (self.first, self.second) = (first, second) }
    public init(integerLiteral value: Int) { self.init(value) }
    public init(arrayLiteral elements: Int...) {
        opPrecondition(elements.count == 2, "conv", "expected 2 values, got \(elements)")
        self.init(elements[0], elements[1])
    }
    var pair: [Int] { [first, second] }
}

/// A 1-D convolution (cross-correlation, as MLX and torch) of `input` (N, L, C_in)
/// with `weight` (C_out, K, C_in/groups).
///
/// ```swift
/// let y = conv1d(x, w, stride: 2, padding: 1)   // (N, L_out, C_out)
/// ```
public func conv1d(
    _ input: Tensor, _ weight: Tensor, stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1
) -> Tensor {
    checkConvInputs(input, weight, rank: 1, groups: groups, "conv1d")
    let y = convolve(
        input.expandedDimensions(axis: 1), weight.expandedDimensions(axis: 1), stride: [1, stride],
        padding: [(0, 0), (padding, padding)], dilation: [1, dilation], groups: groups, "conv1d")
    return y.squeezed(axis: 1)
}

/// A 2-D convolution of `input` (N, H, W, C_in) with `weight` (C_out, KH, KW, C_in/groups).
///
/// ```swift
/// let y = conv2d(x, w, stride: 1, padding: [1, 1], groups: 2)   // (N, H_out, W_out, C_out)
/// ```
/// - Complexity: the im2col buffer holds N * H_out * W_out * KH * KW * C_in elements.
public func conv2d(
    _ input: Tensor, _ weight: Tensor, stride: IntOrPair = 1, padding: IntOrPair = 0, dilation: IntOrPair = 1,
    groups: Int = 1
) -> Tensor {
    checkConvInputs(input, weight, rank: 2, groups: groups, "conv2d")
    return convolve(
        input, weight, stride: stride.pair, padding: padding.pair.map { ($0, $0) }, dilation: dilation.pair,
        groups: groups, "conv2d")
}

/// The transpose (gradient with respect to its input) of `conv1d`: `input`
/// (N, L, C_in), `weight` (C_out, K, C_in/groups); output length
/// (L - 1) * stride - 2 * padding + dilation * (K - 1) + outputPadding + 1.
public func convTransposed1d(
    _ input: Tensor, _ weight: Tensor, stride: Int = 1, padding: Int = 0, dilation: Int = 1, outputPadding: Int = 0,
    groups: Int = 1
) -> Tensor {
    checkConvInputs(input, weight, rank: 1, groups: groups, "convTransposed1d")
    return convolveTransposed(
        input.expandedDimensions(axis: 1), weight.expandedDimensions(axis: 1), stride: [1, stride],
        padding: [0, padding], dilation: [1, dilation], outputPadding: [0, outputPadding], groups: groups,
        "convTransposed1d"
    ).squeezed(axis: 1)
}

/// The transpose of `conv2d`: `input` (N, H, W, C_in), `weight` (C_out, KH, KW, C_in/groups).
public func convTransposed2d(
    _ input: Tensor, _ weight: Tensor, stride: IntOrPair = 1, padding: IntOrPair = 0, dilation: IntOrPair = 1,
    outputPadding: IntOrPair = 0, groups: Int = 1
) -> Tensor {
    checkConvInputs(input, weight, rank: 2, groups: groups, "convTransposed2d")
    return convolveTransposed(
        input, weight, stride: stride.pair, padding: padding.pair, dilation: dilation.pair,
        outputPadding: outputPadding.pair, groups: groups, "convTransposed2d")
}

private func checkConvInputs(_ x: Tensor, _ w: Tensor, rank: Int, groups: Int, _ op: String) {
    opPrecondition(
        x.ndim == rank + 2 && w.ndim == rank + 2, op,
        "needs a \(rank + 2)-D input and weight, got \(x.shape) and \(w.shape)")
    opPrecondition(
        groups >= 1 && x.shape[rank + 1] % groups == 0 && w.shape[0] % groups == 0, op,
        "groups = \(groups) must divide the input channels of \(x.shape) and the output channels of \(w.shape)")
    opPrecondition(
        w.shape[rank + 1] * groups == x.shape[rank + 1], op,
        "weight \(w.shape) expects \(w.shape[rank + 1] * groups) input channels, input \(x.shape) has \(x.shape[rank + 1])"
    )
    opPrecondition(
        promoteTypes(x.dtype, w.dtype).isFloatingPoint, op, "needs floating-point inputs, got \(x.dtype) and \(w.dtype)"
    )
}

/// x (N, H, W, C) with the spatial axes padded by (before, after) zeros, or cropped where negative.
private func padOrCrop(_ x: Tensor, _ pads: [(Int, Int)]) -> Tensor {
    var start = [0, 0, 0, 0], end = x.shape
    var widths: [(before: Int, after: Int)] = [(0, 0), (0, 0), (0, 0), (0, 0)]
    for (i, (lo, hi)) in pads.enumerated() {
        if lo < 0 { start[i + 1] = -lo } else { widths[i + 1].before = lo }
        if hi < 0 { end[i + 1] += hi } else { widths[i + 1].after = hi }
    }
    return x.slice(start: start, end: end.indices.map { Swift.max(end[$0], start[$0]) }, stride: [1, 1, 1, 1])
        .padded(widths)
}

/// The 2-D convolution core: x (N, H, W, C), w (O, KH, KW, C/G), per-axis stride, (lo, hi) padding, dilation.
private func convolve(
    _ input: Tensor, _ weight: Tensor, stride: [Int], padding: [(Int, Int)], dilation: [Int], groups: Int,
    _ op: String
) -> Tensor {
    opPrecondition(
        stride.allSatisfy { $0 >= 1 } && dilation.allSatisfy { $0 >= 1 }, op,
        "stride \(stride) and dilation \(dilation) must be positive")
    opPrecondition(padding.allSatisfy { $0.0 >= 0 && $0.1 >= 0 }, op, "padding must be non-negative")
    let dtype = promoteTypes(input.dtype, weight.dtype)
    let x = padOrCrop(input.asType(dtype), padding)
    let w = weight.asType(dtype)
    let n = x.shape[0], c = x.shape[3], o = w.shape[0]
    let k = [w.shape[1], w.shape[2]]
    let span = (0..<2).map { dilation[$0] * (k[$0] - 1) + 1 }
    let spatial = [x.shape[1], x.shape[2]]
    opPrecondition(
        spatial[0] >= span[0] && spatial[1] >= span[1], op,
        "the dilated kernel \(span) is larger than the padded input \(spatial) (input \(input.shape), weight \(weight.shape))"
    )
    let out = (0..<2).map { (spatial[$0] - span[$0]) / stride[$0] + 1 }

    // im2col: one strided slice per kernel tap, stacked as (N, OH, OW, KH*KW, C).
    var taps: [Tensor] = []
    for kh in 0..<k[0] {
        for kw in 0..<k[1] {
            let h0 = kh * dilation[0], w0 = kw * dilation[1]
            taps.append(
                x.slice(
                    start: [0, h0, w0, 0],
                    end: [n, h0 + stride[0] * (out[0] - 1) + 1, w0 + stride[1] * (out[1] - 1) + 1, c],
                    stride: [1, stride[0], stride[1], 1]))
        }
    }
    let patches = stacked(taps, axis: 3)
    let rows = n * out[0] * out[1], taps2 = k[0] * k[1], cg = c / groups, og = o / groups
    let cols = patches.reshaped([rows, taps2, groups, cg]).transposed(axes: [2, 0, 1, 3])
        .reshaped([groups, rows, taps2 * cg])
    let kernel = w.reshaped([groups, og, taps2 * cg]).transposed(axes: [0, 2, 1])
    let y = matmul(cols, kernel)  // (G, rows, O/G)
    return y.transposed(axes: [1, 0, 2]).reshaped([n, out[0], out[1], o])
}

private func convolveTransposed(
    _ input: Tensor, _ weight: Tensor, stride: [Int], padding: [Int], dilation: [Int], outputPadding: [Int],
    groups: Int, _ op: String
) -> Tensor {
    opPrecondition(
        stride.allSatisfy { $0 >= 1 } && dilation.allSatisfy { $0 >= 1 } && padding.allSatisfy { $0 >= 0 }, op,
        "stride \(stride) and dilation \(dilation) must be positive, padding \(padding) non-negative")
    opPrecondition(
        (0..<2).allSatisfy { outputPadding[$0] >= 0 && outputPadding[$0] < Swift.max(stride[$0], dilation[$0]) }, op,
        "outputPadding \(outputPadding) must be smaller than the stride \(stride) or the dilation \(dilation)")
    let dtype = promoteTypes(input.dtype, weight.dtype)
    var x = input.asType(dtype)
    let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
    if stride != [1, 1] && h > 0 && w > 0 {
        let dilated = Tensor.zeros([n, (h - 1) * stride[0] + 1, (w - 1) * stride[1] + 1, c], dtype: dtype)
        x = sliceUpdate(dilated, x, start: [0, 0, 0, 0], stride: [1, stride[0], stride[1], 1])
    }
    let k = [weight.shape[1], weight.shape[2]]
    let pads = (0..<2).map { i -> (Int, Int) in
        let edge = dilation[i] * (k[i] - 1) - padding[i]
        return (edge, edge + outputPadding[i])
    }
    let flipped = weight[.slice(), .stride(by: -1), .stride(by: -1), .slice()]
    return convolve(
        padOrCrop(x, pads), flipped, stride: [1, 1], padding: [(0, 0), (0, 0)], dilation: dilation,
        groups: groups, op)
}
