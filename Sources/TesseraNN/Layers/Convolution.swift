// Convolution layers in MLX's channels-last layout: input (N, L, C) or
// (N, H, W, C); weight (C_out, K..., C_in / groups); default initialisation
// uniform in ±1/√(C_in/groups · K...), bias zeros (MLX).

import Tessera

/// 1-D convolution over (N, L, C_in) → (N, L_out, C_out).
open class Conv1d: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor
    @ParameterInfo public var bias: Tensor?
    public let stride: Int, padding: Int, dilation: Int, groups: Int

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        dilation: Int = 1, groups: Int = 1, bias: Bool = true
    ) {
        precondition(
            inputChannels % groups == 0, "[Conv1d] groups \(groups) must divide the input channels \(inputChannels)")
        let scale = 1 / Double(inputChannels / groups * kernelSize).squareRoot()
        weight = Init.uniform([outputChannels, kernelSize, inputChannels / groups], low: -scale, high: scale)
        self.bias = bias ? Tensor.zeros([outputChannels]) : nil
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        let y = conv1d(x, weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
        return bias.map { y + $0 } ?? y
    }
}

/// 2-D convolution over (N, H, W, C_in) → (N, H_out, W_out, C_out).
open class Conv2d: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor
    @ParameterInfo public var bias: Tensor?
    public let stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair, groups: Int

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: IntOrPair, stride: IntOrPair = 1,
        padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: Int = 1, bias: Bool = true
    ) {
        precondition(
            inputChannels % groups == 0, "[Conv2d] groups \(groups) must divide the input channels \(inputChannels)")
        let scale = 1 / Double(inputChannels / groups * kernelSize.first * kernelSize.second).squareRoot()
        weight = Init.uniform(
            [outputChannels, kernelSize.first, kernelSize.second, inputChannels / groups], low: -scale, high: scale)
        self.bias = bias ? Tensor.zeros([outputChannels]) : nil
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        let y = conv2d(x, weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
        return bias.map { y + $0 } ?? y
    }
}

/// Transposed 1-D convolution; weight (C_out, K, C_in).
open class ConvTranspose1d: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor
    @ParameterInfo public var bias: Tensor?
    public let stride: Int, padding: Int, dilation: Int, outputPadding: Int

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        dilation: Int = 1, outputPadding: Int = 0, bias: Bool = true
    ) {
        let scale = 1 / Double(inputChannels * kernelSize).squareRoot()
        weight = Init.uniform([outputChannels, kernelSize, inputChannels], low: -scale, high: scale)
        self.bias = bias ? Tensor.zeros([outputChannels]) : nil
        (self.stride, self.padding, self.dilation, self.outputPadding) = (stride, padding, dilation, outputPadding)
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        let y = convTransposed1d(
            x, weight, stride: stride, padding: padding, dilation: dilation, outputPadding: outputPadding)
        return bias.map { y + $0 } ?? y
    }
}

/// Transposed 2-D convolution; weight (C_out, KH, KW, C_in).
open class ConvTranspose2d: Module, UnaryLayer {
    @ParameterInfo public var weight: Tensor
    @ParameterInfo public var bias: Tensor?
    public let stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair, outputPadding: IntOrPair

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: IntOrPair, stride: IntOrPair = 1,
        padding: IntOrPair = 0, dilation: IntOrPair = 1, outputPadding: IntOrPair = 0, bias: Bool = true
    ) {
        let scale = 1 / Double(inputChannels * kernelSize.first * kernelSize.second).squareRoot()
        weight = Init.uniform(
            [outputChannels, kernelSize.first, kernelSize.second, inputChannels], low: -scale, high: scale)
        self.bias = bias ? Tensor.zeros([outputChannels]) : nil
        (self.stride, self.padding, self.dilation, self.outputPadding) = (stride, padding, dilation, outputPadding)
    }

    open func callAsFunction(_ x: Tensor) -> Tensor {
        let y = convTransposed2d(
            x, weight, stride: stride, padding: padding, dilation: dilation, outputPadding: outputPadding)
        return bias.map { y + $0 } ?? y
    }
}
