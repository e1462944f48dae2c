// Property wrappers that mark a module's parameters and submodules, so that
// `Module` finds them by reflection (Mirror) with no registration code, as in
// mlx-swift. Each wrapper is a struct around a reference box: Mirror hands out
// copies of stored properties, and the box lets `update(parameters:)` and
// `update(modules:)` write through such a copy. Every write advances
// `Module.generation`, which caches of values derived from parameters read.

import Synchronization
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
    @usableFromInline final class Box {
        @usableFromInline var value: T? { didSet { ModuleGeneration.advance() } }
        @usableFromInline init(_ value: T?) { self.value = value }
    }

    @usableFromInline let box: Box
    @usableFromInline let key: String?

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

    // Inlinable: a model reads its parameters and submodules on every call
    // (a decode step reads hundreds), and an unspecialized generic getter
    // across the module boundary cost more than the read.
    @inlinable public var wrappedValue: T {
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
    @usableFromInline final class Box {
        @usableFromInline var value: T? { didSet { ModuleGeneration.advance() } }
        @usableFromInline init(_ value: T?) { self.value = value }
    }

    @usableFromInline let box: Box
    @usableFromInline let key: String?

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

    // Inlinable: a model reads its parameters and submodules on every call
    // (a decode step reads hundreds), and an unspecialized generic getter
    // across the module boundary cost more than the read.
    @inlinable public var wrappedValue: T {
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

/// The count of writes to any module's parameters or submodules.
@usableFromInline enum ModuleGeneration {
    static let counter = Atomic<UInt64>(0)

    @usableFromInline static func advance() { counter.add(1, ordering: .releasing) }
}

extension Module {
    /// Changes whenever a parameter or submodule of any module is set
    /// (`update(parameters:)`, `update(modules:)`, an optimizer, a transform
    /// swapping in traced values, an assignment). A value derived from
    /// parameters (a stacked weight) can be used without checking them while
    /// it is the same.
    public static var generation: UInt64 { ModuleGeneration.counter.load(ordering: .acquiring) }
}
