// Tensors computed from a module's parameters for inference only (a stacked
// q/k/v weight, a gemma norm's 1 + w), kept while the parameters are the
// very tensors they were computed from. A parameter that `update(parameters:)`,
// an optimizer or a transform replaced is a different tensor, so the kept
// value is never stale.

import Synchronization
import Tessera

final class DerivedTensors: Sendable {
    private struct Entry {
        let sources: [Tensor]
        /// Empty when `derive` declined (e.g. weights whose formats do not stack).
        let values: [Tensor]
    }

    private let entry = Mutex<Entry?>(nil)

    /// The values derived from `sources`: kept ones when the sources are the
    /// same tensors, else `derive(sources)` evaluated and kept. Nil inside a
    /// transform's trace or while a source is still lazy (an optimizer's
    /// update before `eval`): the caller then computes from the parameters
    /// directly, so gradients reach them and nothing traced is kept. An empty
    /// array when `derive` returned nil for these sources.
    func values(from sources: [Tensor], _ derive: ([Tensor]) -> [Tensor]?) -> [Tensor]? {
        entry.withLock { entry -> [Tensor]? in
            if let kept = entry, kept.sources.count == sources.count,
                zip(kept.sources, sources).allSatisfy({ $0.isIdentical(to: $1) })
            {
                return kept.values
            }
            guard !Compile.isTracing, sources.allSatisfy(\.isEvaluated) else { return nil }
            let values = derive(sources) ?? []
            eval(values)
            entry = Entry(sources: sources, values: values)
            return values
        }
    }

    /// Keeps `values` as derived from `sources` (at load, where the sources
    /// are made views of the values so the weights are held once).
    func keep(_ values: [Tensor], from sources: [Tensor]) {
        entry.withLock { $0 = Entry(sources: sources, values: values) }
    }
}
