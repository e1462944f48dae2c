// Property wrappers that mark a module's parameters and submodules, so that
// `Module` finds them by reflection (Mirror) with no registration code, as in
// mlx-swift. Each wrapper is a struct around a reference box: Mirror hands out
// copies of stored properties, and the box lets `update(parameters:)` and
// `update(modules:)` write through such a copy.

import Tessera

/// Marks a stored `Tensor` (or `Tensor?`) property of a `Module` as a parameter.
///
/// ```swift
/// final class Scale: Module {
///     @ParameterInfo var weight: Tensor
///     @ParameterInfo(key: "running_mean") var runningMean: Tensor
///     init(_ n: Int) { weight = Tensor.ones([n]); runningMean = Tensor.zeros([n]) }
/// }
/// ```
/// The parameter's key is the property name unless `key` is given.
@propertyWrapper
public struct ParameterInfo<T: ParameterValue> {
    final class Box {
        var value: T?
        init(_ value: T?) { self.value = value }
    }

    let box: Box
    let key: String?

    public init(wrappedValue: T, key: String? = nil) {
        box = Box(wrappedValue)
        self.key = key
    }

    /// A keyed property whose value is assigned in `init` after `super.init()`,
    /// or before it through the backing storage: `_name.wrappedValue = ...`.
    public init(key: String) {
        box = Box(nil)
        self.key = key
    }

    public var wrappedValue: T {
        get {
            guard let v = box.value else { fatalError("[Module] property \(key ?? "") read before it was assigned") }
            return v
        }
        nonmutating set { box.value = newValue }
    }
}

/// Marks a stored property holding a `Module`, an optional module or an array
/// of modules as a submodule (the key is the property name unless `key` is given).
///
/// ```swift
/// final class MLP: Module {
///     @ModuleInfo var l1: Linear
///     @ModuleInfo(key: "blocks") var layers: [Linear]
///     init() { l1 = Linear(4, 8); layers = [Linear(8, 8), Linear(8, 2)] }
/// }
/// ```
@propertyWrapper
public struct ModuleInfo<T> {
    final class Box {
        var value: T?
        init(_ value: T?) { self.value = value }
    }

    let box: Box
    let key: String?

    public init(wrappedValue: T, key: String? = nil) {
        box = Box(wrappedValue)
        self.key = key
    }

    /// A keyed property whose value is assigned in `init` after `super.init()`,
    /// or before it through the backing storage: `_name.wrappedValue = ...`.
    public init(key: String) {
        box = Box(nil)
        self.key = key
    }

    public var wrappedValue: T {
        get {
            guard let v = box.value else { fatalError("[Module] property \(key ?? "") read before it was assigned") }
            return v
        }
        nonmutating set { box.value = newValue }
    }
}

/// What a `@ParameterInfo` property may hold: `Tensor` or `Tensor?`.
public protocol ParameterValue {
    var parameterTensor: Tensor? { get }
    /// `tensor` as this type (nil: it cannot be stored here).
    static func fromParameter(_ tensor: Tensor) -> Self?
}

extension Tensor: ParameterValue {
    public var parameterTensor: Tensor? { self }
    public static func fromParameter(_ tensor: Tensor) -> Tensor? { tensor }
}

extension Optional: ParameterValue where Wrapped == Tensor {
    public var parameterTensor: Tensor? { self }
    public static func fromParameter(_ tensor: Tensor) -> Tensor?? { .some(tensor) }
}

/// Type-erased access to a `@ParameterInfo` property found by reflection.
protocol ParameterSlot {
    var key: String? { get }
    var tensor: Tensor? { get }
    func set(_ tensor: Tensor) -> Bool
}

extension ParameterInfo: ParameterSlot {
    var tensor: Tensor? { box.value?.parameterTensor }
    func set(_ tensor: Tensor) -> Bool {
        guard let v = T.fromParameter(tensor) else { return false }
        box.value = v
        return true
    }
}

/// Type-erased access to a `@ModuleInfo` property found by reflection.
protocol ModuleSlot {
    var key: String? { get }
    var value: Any { get }
    /// Stores `value` (a module, or an array of modules); false if the type does not fit.
    func set(_ value: Any) -> Bool
}

extension ModuleInfo: ModuleSlot {
    var value: Any { box.value as Any }
    func set(_ value: Any) -> Bool {
        if let v = value as? T {
            box.value = v
            return true
        }
        // An array of modules arrives as [Module]; rebuild it as T's element type.
        if let modules = value as? [Module], let v = castArray(modules) {
            box.value = v
            return true
        }
        return false
    }

    private func castArray(_ modules: [Module]) -> T? {
        let any: Any = modules
        return any as? T
    }
}
