// Parameter trees: what `Module.parameters()` returns and what gradients and
// optimizer updates come back as. A tree mirrors the module: dictionaries for
// modules (keys are property names), arrays for arrays of modules, tensors at
// the leaves. Flattened keys join the path with dots, array positions as
// numbers: `layers.0.attention.wq.weight` (MLX's `tree_flatten`).

import Tessera

/// One node of a parameter tree.
public indirect enum NestedItem: Sendable {
    case value(Tensor)
    case array([NestedItem])
    case dictionary([String: NestedItem])

    /// The leaves with their dotted keys, prefixed by `prefix`, in key order
    /// within dictionaries and index order within arrays.
    func flattened(prefix: String, into out: inout [(key: String, value: Tensor)]) {
        switch self {
        case .value(let t): out.append((prefix, t))
        case .array(let items):
            for (i, item) in items.enumerated() { item.flattened(prefix: join(prefix, String(i)), into: &out) }
        case .dictionary(let d):
            for key in d.keys.sorted() { d[key]!.flattened(prefix: join(prefix, key), into: &out) }
        }
    }

    /// The same tree with `transform` applied to every leaf.
    public func mapValues(_ transform: (Tensor) throws -> Tensor) rethrows -> NestedItem {
        switch self {
        case .value(let t): return .value(try transform(t))
        case .array(let items): return .array(try items.map { try $0.mapValues(transform) })
        case .dictionary(let d): return .dictionary(try d.mapValues { try $0.mapValues(transform) })
        }
    }
}

func join(_ prefix: String, _ key: String) -> String {
    prefix.isEmpty ? key : key.isEmpty ? prefix : prefix + "." + key
}

/// A module's parameters (or their gradients, or an optimizer's new values)
/// as a tree keyed by property names.
///
/// ```swift
/// let p = model.parameters()
/// for (key, w) in p.flattened() { print(key, w.shape) }   // "l1.bias" [128] ...
/// let grads: ModuleParameters = ...                      // same keys as trainableParameters()
/// ```
public struct ModuleParameters: Sendable {
    public var items: [String: NestedItem]

    public init(_ items: [String: NestedItem] = [:]) { self.items = items }

    /// A tree from dotted keys; a component that is a number indexes an array
    /// (numbers under one parent must then be `0..<n`).
    public init(flattened pairs: [(key: String, value: Tensor)]) {
        self.items = [:]
        for (key, value) in pairs { insert(value, at: key.split(separator: ".").map(String.init)) }
        items = items.mapValues(Self.arraysFromNumberKeys)
    }

    /// A tree from a flat dictionary of dotted keys (e.g. `Safetensors.load(path).tensors`).
    public init(flattened dictionary: [String: Tensor]) {
        self.init(flattened: dictionary.map { ($0.key, $0.value) })
    }

    /// Dotted keys and leaves, sorted by key path (array indices numerically).
    public func flattened() -> [(key: String, value: Tensor)] {
        var out: [(key: String, value: Tensor)] = []
        NestedItem.dictionary(items).flattened(prefix: "", into: &out)
        return out
    }

    /// The leaves as a flat dictionary of dotted keys.
    public var flatDictionary: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: flattened().map { ($0.key, $0.value) })
    }

    /// The leaf or subtree at `key` (a property name).
    public subscript(key: String) -> NestedItem? {
        get { items[key] }
        set { items[key] = newValue }
    }

    /// The same tree with `transform` applied to every leaf.
    public func mapValues(_ transform: (Tensor) throws -> Tensor) rethrows -> ModuleParameters {
        ModuleParameters(try items.mapValues { try $0.mapValues(transform) })
    }

    /// Leaves of `self` and `other` paired by key (keys missing in `other` are skipped).
    public func mapValues(
        _ other: ModuleParameters, _ transform: (Tensor, Tensor) throws -> Tensor
    ) rethrows -> ModuleParameters {
        let second = other.flatDictionary
        return ModuleParameters(
            flattened: try flattened().compactMap { key, value in
                guard let o = second[key] else { return nil }
                return (key, try transform(value, o))
            })
    }

    public var isEmpty: Bool { items.isEmpty }

    private mutating func insert(_ value: Tensor, at path: [String]) {
        func put(_ node: NestedItem?, _ path: ArraySlice<String>) -> NestedItem {
            guard let head = path.first else { return .value(value) }
            var d: [String: NestedItem] = [:]
            if case .dictionary(let existing)? = node { d = existing }
            d[head] = put(d[head], path.dropFirst())
            return .dictionary(d)
        }
        guard let head = path.first else { return }
        items[head] = put(items[head], path.dropFirst())
    }

    /// Dictionaries whose keys are exactly 0..<n become arrays, recursively.
    private static func arraysFromNumberKeys(_ item: NestedItem) -> NestedItem {
        guard case .dictionary(let d) = item else { return item }
        let converted = d.mapValues(arraysFromNumberKeys)
        let indices = converted.keys.compactMap { Int($0) }
        if !converted.isEmpty && indices.count == converted.count && Set(indices) == Set(0..<converted.count) {
            return .array((0..<converted.count).map { converted[String($0)]! })
        }
        return .dictionary(converted)
    }
}
