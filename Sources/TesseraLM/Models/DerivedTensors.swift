// Tensors computed from a module's parameters for inference only (a gemma
// norm's 1 + w), kept while the parameters are the very tensors they were
// computed from. A parameter that `update(parameters:)`, an optimizer or a
// transform replaced is a different tensor, so the kept value is never
// stale; the parameters are only compared when `Module.generation` says some
// module was written since the last check.

import Synchronization
import Tessera
import TesseraNN

final class DerivedTensors: Sendable {
    private struct Entry {
        let sources: [Tensor]
        /// Empty when `derive` declined.
        let values: [Tensor]
        /// `Module.generation` when the sources were last found to be these.
        var generation: UInt64
    }

    private let entry = Mutex<Entry?>(nil)

    /// The values derived from `sources()`: kept ones when no module was
    /// written since they were last checked, or when the sources are the same
    /// tensors; else `derive(sources)` evaluated and kept. Nil inside a
    /// transform's trace or while a source is still lazy (an optimizer's
    /// update before `eval`): the caller then computes from the parameters
    /// directly, so gradients reach them and nothing traced is kept. An empty
    /// array when `derive` returned nil for these sources.
    func values(from sources: () -> [Tensor], _ derive: ([Tensor]) -> [Tensor]?) -> [Tensor]? {
        let generation = Module.generation
        if let kept = entry.withLock({ $0?.generation == generation ? $0?.values : nil }) { return kept }
        let sources = sources()
        return entry.withLock { entry -> [Tensor]? in
            if var kept = entry, kept.sources.count == sources.count,
                zip(kept.sources, sources).allSatisfy({ $0.isIdentical(to: $1) })
            {
                kept.generation = generation
                entry = kept
                return kept.values
            }
            guard !Compile.isTracing, sources.allSatisfy(\.isEvaluated) else { return nil }
            let values = derive(sources) ?? []
            eval(values)
            entry = Entry(sources: sources, values: values, generation: generation)
            return values
        }
    }
}
