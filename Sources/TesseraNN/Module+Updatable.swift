// A module's parameters as compile state: `compile(inputs: [model], outputs:
// [model]) { ... }` reads them as implicit inputs and writes the updated
// ones back, in the order of their sorted dotted keys.

import Tessera

extension Module: Updatable {
    public var innerState: [Tensor] {
        get { parameters().flattened().sorted { $0.key < $1.key }.map(\.value) }
        set {
            let keys = parameters().flattened().map(\.key).sorted()
            precondition(
                keys.count == newValue.count, "[compile] \(newValue.count) tensors for \(keys.count) parameters")
            assign(Dictionary(uniqueKeysWithValues: zip(keys, newValue)))
        }
    }
}
