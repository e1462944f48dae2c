// Module: the base class of layers and models. Parameters and submodules are
// the properties marked `@ParameterInfo` / `@ModuleInfo`, found by reflection
// (Mirror over the class and its superclasses), so a model declares them once
// and `parameters()`, `update(parameters:)`, `freeze`, `train` and
// `valueAndGrad(model:)` work on the whole tree.

import Tessera

/// Errors from loading parameters into a module or finding keys in it.
public enum ModuleError: Error, CustomStringConvertible, Equatable {
    /// `update(parameters:)` found keys the module lacks, keys it did not get,
    /// or tensors of the wrong shape (each as "key: expected [..], got [..]").
    case parameterMismatch(missing: [String], unexpected: [String], shapeMismatches: [String])
    /// `freeze`/`unfreeze(keys:strict: true)` named keys the module does not have.
    case unknownKeys([String])
    /// `update(modules:)` offered a value that the property cannot hold.
    case incompatibleModule(key: String, reason: String)

    public var description: String {
        switch self {
        case let .parameterMismatch(missing, unexpected, shapes):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing keys: \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
            if !shapes.isEmpty { parts.append("shape mismatches: \(shapes.joined(separator: "; "))") }
            return "parameters do not match the module: " + parts.joined(separator: "; ")
        case let .unknownKeys(keys): return "the module has no parameters named \(keys.joined(separator: ", "))"
        case let .incompatibleModule(key, reason): return "cannot set module \(key): \(reason)"
        }
    }
}

/// The base class of layers and models.
///
/// Subclasses mark parameters with `@ParameterInfo` and submodules with
/// `@ModuleInfo`; plain stored `Tensor`s are constants (not parameters).
///
/// ```swift
/// final class MLP: Module {
///     @ModuleInfo var l1: Linear
///     @ModuleInfo var l2: Linear
///     init() { l1 = Linear(64, 128); l2 = Linear(128, 10) }
///     func callAsFunction(_ x: Tensor) -> Tensor { l2(gelu(l1(x))) }
/// }
/// ```
open class Module {
    /// Whether the module is in training mode (dropout active, batch
    /// statistics in normalisation); set with `train(_:)`.
    public private(set) var training = true
    /// Local parameter keys excluded from `trainableParameters()`.
    private var frozenKeys = Set<String>()

    public init() {}

    // MARK: Reflection

    enum Child {
        case parameter(ParameterSlot)
        case module(ModuleSlot)
    }

    /// The marked properties of this module (not its submodules), by key.
    func reflectedChildren() -> [(key: String, child: Child)] {
        var out: [(String, Child)] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [[(String, Child)]] = []
        while let m = mirror {
            var level: [(String, Child)] = []
            for case (let label?, let value) in m.children {
                let name = label.hasPrefix("_") ? String(label.dropFirst()) : label
                if let p = value as? ParameterSlot {
                    level.append((p.key ?? name, .parameter(p)))
                } else if let s = value as? ModuleSlot {
                    level.append((s.key ?? name, .module(s)))
                }
            }
            levels.append(level)
            mirror = m.superclassMirror
        }
        // Superclass properties first, as declared.
        for level in levels.reversed() { out.append(contentsOf: level) }
        return out
    }

    /// The submodules held by a `@ModuleInfo` value: one, none, or an array.
    static func modules(in value: Any) -> NestedModules? {
        if let m = value as? Module { return .one(m) }
        if let ms = value as? [Module] { return .many(ms) }
        return nil
    }

    enum NestedModules {
        case one(Module)
        case many([Module])
    }

    // MARK: Parameters

    /// All parameters, as a tree keyed by property names.
    public func parameters() -> ModuleParameters { collect { _, _ in true } }

    /// The parameters not frozen: what `valueAndGrad(model:)` differentiates
    /// and optimizers update.
    public func trainableParameters() -> ModuleParameters {
        collect { module, key in !module.frozenKeys.contains(key) }
    }

    private func collect(_ include: (Module, String) -> Bool) -> ModuleParameters {
        var items: [String: NestedItem] = [:]
        for (key, child) in reflectedChildren() {
            switch child {
            case .parameter(let p):
                if let t = p.tensor, include(self, key) { items[key] = .value(t) }
            case .module(let s):
                switch Module.modules(in: s.value) {
                case .one(let m)?:
                    let sub = m.collect(include)
                    if !sub.isEmpty { items[key] = .dictionary(sub.items) }
                case .many(let ms)?:
                    items[key] = .array(ms.map { .dictionary($0.collect(include).items) })
                case nil: break
                }
            }
        }
        return ModuleParameters(items)
    }

    /// Replaces parameters with the tensors of `parameters`, matched by key.
    ///
    /// With `strict` (the default), every parameter of the module must be given
    /// and nothing else; shapes must match either way. On a mismatch nothing is
    /// changed and a `ModuleError.parameterMismatch` names every bad key.
    ///
    /// ```swift
    /// try model.update(parameters: ModuleParameters(flattened: Safetensors.load(path).tensors))
    /// ```
    public func update(parameters: ModuleParameters, strict: Bool = true) throws {
        let given = parameters.flatDictionary
        let slots = parameterSlots()
        var missing: [String] = [], shapes: [String] = []
        for (key, slot) in slots {
            guard let new = given[key] else {
                missing.append(key)
                continue
            }
            if let old = slot.tensor, old.shape != new.shape {
                shapes.append("\(key): expected \(old.shape), got \(new.shape)")
            }
        }
        let known = Set(slots.map(\.key))
        let unexpected = given.keys.filter { !known.contains($0) }.sorted()
        if !shapes.isEmpty || (strict && (!missing.isEmpty || !unexpected.isEmpty)) {
            throw ModuleError.parameterMismatch(
                missing: strict ? missing : [], unexpected: strict ? unexpected : [], shapeMismatches: shapes)
        }
        for (key, slot) in slots {
            if let new = given[key] { _ = slot.set(new) }
        }
    }

    /// Casts every floating-point parameter that `predicate` accepts (default:
    /// all) to `dtype`, e.g. `model.setDType(.float16)` (MLX's `set_dtype`).
    public func setDType(_ dtype: DType, predicate: ((String) -> Bool)? = nil) {
        for (key, slot) in parameterSlots() {
            guard let t = slot.tensor, t.dtype.isFloatingPoint, predicate?(key) ?? true else { continue }
            _ = slot.set(t.asType(dtype))
        }
    }

    /// The number of parameter elements (packed quantized words count as stored).
    public var parameterCount: Int { parameters().flattened().reduce(0) { $0 + $1.value.size } }

    /// `update(parameters:)` from dotted keys, e.g. `Safetensors.load(path).tensors`.
    public func update(parameters: [String: Tensor], strict: Bool = true) throws {
        try update(parameters: ModuleParameters(flattened: parameters), strict: strict)
    }

    /// Sets the parameters present in `parameters` without checks (optimizers
    /// and transforms, whose trees come from this module); unknown keys are ignored.
    public func assign(_ parameters: [String: Tensor]) {
        for (key, slot) in parameterSlots() {
            if let new = parameters[key] { _ = slot.set(new) }
        }
    }

    /// Every parameter slot (including nil optional parameters) with its dotted key.
    func parameterSlots(prefix: String = "") -> [(key: String, slot: ParameterSlot)] {
        var out: [(key: String, slot: ParameterSlot)] = []
        for (key, child) in reflectedChildren() {
            switch child {
            case .parameter(let p): if p.tensor != nil { out.append((join(prefix, key), p)) }
            case .module(let s):
                switch Module.modules(in: s.value) {
                case .one(let m)?: out += m.parameterSlots(prefix: join(prefix, key))
                case .many(let ms)?:
                    for (i, m) in ms.enumerated() {
                        out += m.parameterSlots(prefix: join(join(prefix, key), String(i)))
                    }
                case nil: break
                }
            }
        }
        return out
    }

    // MARK: Submodules

    /// This module and every submodule, with dotted keys ("" for this one), parents first.
    public func namedModules() -> [(key: String, module: Module)] {
        var out: [(key: String, module: Module)] = [("", self)]
        for (key, child) in reflectedChildren() {
            guard case .module(let s) = child else { continue }
            switch Module.modules(in: s.value) {
            case .one(let m)?: out += m.namedModules().map { (join(key, $0.key), $0.module) }
            case .many(let ms)?:
                for (i, m) in ms.enumerated() {
                    out += m.namedModules().map { (join(join(key, String(i)), $0.key), $0.module) }
                }
            case nil: break
            }
        }
        return out
    }

    /// The direct submodules, with their keys (array elements as `key.i`).
    public func children() -> [(key: String, module: Module)] {
        var out: [(key: String, module: Module)] = []
        for (key, child) in reflectedChildren() {
            guard case .module(let s) = child else { continue }
            switch Module.modules(in: s.value) {
            case .one(let m)?: out.append((key, m))
            case .many(let ms)?: out += ms.enumerated().map { (join(key, String($0.offset)), $0.element) }
            case nil: break
            }
        }
        return out
    }

    /// Replaces submodules by dotted key (`"layers.1"`, `"l2"`), e.g. to swap
    /// `Linear` layers for `QuantizedLinear`. The new value must fit the property's type.
    public func update(modules: [String: Module]) throws {
        for (path, replacement) in modules {
            let parts = path.split(separator: ".").map(String.init)
            guard let last = parts.last else { continue }
            let parentPath = parts.dropLast()
            var parent: Module = self
            var index: Int? = nil
            var key = last
            // An array element: the parent key is the array property, `last` its index.
            if let i = Int(last), parts.count >= 2 {
                index = i
                key = parts[parts.count - 2]
                parent = try module(at: Array(parts.dropLast(2)), path)
            } else {
                parent = try module(at: Array(parentPath), path)
            }
            guard case .module(let slot)? = parent.reflectedChildren().first(where: { $0.key == key })?.child else {
                throw ModuleError.incompatibleModule(key: path, reason: "no submodule named \(key)")
            }
            if let index {
                guard case .many(var ms)? = Module.modules(in: slot.value), index < ms.count else {
                    throw ModuleError.incompatibleModule(key: path, reason: "\(key) has no element \(index)")
                }
                ms[index] = replacement
                guard slot.set(ms) else {
                    throw ModuleError.incompatibleModule(
                        key: path, reason: "\(type(of: replacement)) does not fit the elements of \(key)")
                }
            } else if !slot.set(replacement) {
                throw ModuleError.incompatibleModule(key: path, reason: "\(type(of: replacement)) does not fit \(key)")
            }
        }
    }

    private func module(at parts: [String], _ path: String) throws -> Module {
        var current: Module = self
        var i = 0
        while i < parts.count {
            guard case .module(let slot)? = current.reflectedChildren().first(where: { $0.key == parts[i] })?.child,
                let nested = Module.modules(in: slot.value)
            else { throw ModuleError.incompatibleModule(key: path, reason: "no submodule named \(parts[i])") }
            switch nested {
            case .one(let m): current = m
            case .many(let ms):
                guard i + 1 < parts.count, let index = Int(parts[i + 1]), index < ms.count else {
                    throw ModuleError.incompatibleModule(key: path, reason: "\(parts[i]) needs an index")
                }
                current = ms[index]
                i += 1
            }
            i += 1
        }
        return current
    }

    // MARK: Freezing and mode

    /// Freezes parameters: excluded from `trainableParameters()`, so neither
    /// differentiated nor updated. With no `keys`, every parameter; a key is a
    /// local parameter name (`"bias"`, applied in every submodule when
    /// `recursive`) or a dotted path from this module (`"layers.0.weight"`).
    /// With `strict`, keys that match nothing throw `ModuleError.unknownKeys`.
    public func freeze(recursive: Bool = true, keys: [String]? = nil, strict: Bool = false) throws {
        try setFrozen(true, recursive: recursive, keys: keys, strict: strict)
    }

    /// Undoes `freeze` for the same selection.
    public func unfreeze(recursive: Bool = true, keys: [String]? = nil, strict: Bool = false) throws {
        try setFrozen(false, recursive: recursive, keys: keys, strict: strict)
    }

    private func setFrozen(_ frozen: Bool, recursive: Bool, keys: [String]?, strict: Bool) throws {
        let modules = recursive ? namedModules() : [("", self)]
        var matched = Set<String>()
        for (path, module) in modules {
            let local = module.reflectedChildren().compactMap { key, child -> String? in
                if case .parameter(let p) = child, p.tensor != nil { return key }
                return nil
            }
            for key in local {
                let full = join(path, key)
                let selected: Bool
                if let keys {
                    if keys.contains(full) {
                        selected = true
                        matched.insert(full)
                    } else if keys.contains(key) {
                        selected = true
                        matched.insert(key)
                    } else {
                        selected = false
                    }
                } else {
                    selected = true
                }
                guard selected else { continue }
                if frozen { module.frozenKeys.insert(key) } else { module.frozenKeys.remove(key) }
            }
        }
        if strict, let keys {
            let unknown = keys.filter { !matched.contains($0) }
            if !unknown.isEmpty { throw ModuleError.unknownKeys(unknown) }
        }
    }

    /// Sets training mode (`true`) or evaluation mode (`false`) on this module
    /// and every submodule.
    ///
    /// ```swift
    /// model.train(false)   // dropout off, BatchNorm uses running statistics
    /// ```
    public func train(_ mode: Bool = true) {
        for (_, m) in namedModules() { m.training = mode }
    }
}

/// A module applied to one tensor; what `Sequential` chains.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}
