// The fine-tuning loop (mlx-lm's tuner/trainer.py): a step is the masked
// loss and its gradients for the trainable parameters, then an optimizer
// update; every `stepsPerReport` steps a report (loss, learning rate,
// tokens/s, trained tokens, peak memory), every `stepsPerEval` the
// validation loss, every `saveEvery` the adapters (written atomically).

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraNN
import TesseraOptimizers

/// The settings of a run (mlx-lm's flags and defaults).
public struct TrainingOptions: Sendable {
    public var iterations = 1000
    public var batchSize = 4
    public var maxSequenceLength = 2048
    public var stepsPerReport = 10
    public var stepsPerEval = 200
    /// Validation batches per evaluation; -1: the whole set.
    public var validationBatches = 25
    public var saveEvery = 100
    /// Where adapters are saved (a folder); nil: not saved.
    public var adapterPath: String? = nil
    public var seed: UInt64 = 0
    /// A training state file (`TrainingCheckpoint`) to continue from, bit for bit.
    public var resumeFrom: String? = nil
    /// Batches whose gradients are averaged into one update (mlx-lm's
    /// `grad_accumulation_steps`; iterations count batches, as there).
    public var gradientAccumulationSteps = 1
    /// Data parallelism (under `tessera launch -n N`): each rank of the group
    /// trains on its block of every batch's rows, and the gradients are
    /// averaged over the ranks, weighted by each block's counted tokens, so a
    /// step equals one process's step on the whole batch. Nil or a group of
    /// one: this process alone.
    public var group: Group? = nil

    public init() {}
}

/// What the loop tells its caller as it goes.
public enum TrainingEvent: Sendable {
    /// Mean training loss over the steps since the last report.
    case train(
        step: Int, loss: Float, learningRate: Float, iterationsPerSecond: Double, tokensPerSecond: Double,
        trainedTokens: Int, peakMemoryBytes: Int)
    case validation(step: Int, loss: Float, seconds: Double)
    case saved(step: Int, path: String)
    /// Stopped early (`shouldStop`), the state saved to `path` (nil without an adapter path).
    case stopped(step: Int, path: String?)
    /// Data parallel: the mean seconds per step spent averaging gradients over
    /// the ranks since the last report (after the step's own gradients were computed).
    case communication(step: Int, secondsPerStep: Double)
}

public enum Trainer {
    /// Trains `model`'s trainable parameters on `train` with `optimizer`,
    /// reporting through `report`; saves the adapters (and the training state,
    /// `TrainingCheckpoint`) every `saveEvery` steps and at the end when
    /// `options.adapterPath` is set. With `options.resumeFrom` it continues a
    /// saved run exactly where it stopped. `shouldStop` is asked before each
    /// step: when it says yes the state is saved and the loop ends. Returns the
    /// last validation loss (nil without `valid`).
    @discardableResult
    public static func train(
        model: TransformerModel, optimizer: Optimizer, adapter: AdapterConfig, train: [TokenizedExample],
        valid: [TokenizedExample]?, options: TrainingOptions, shouldStop: () -> Bool = { false },
        report: (TrainingEvent) -> Void
    ) throws -> Float? {
        let group = options.group.flatMap { $0.size > 1 ? $0 : nil }
        if let group, options.batchSize < group.size {
            throw DistributedError.badConfiguration(
                "a batch of \(options.batchSize) examples does not split over \(group.size) ranks")
        }
        var batches = BatchIterator(
            train, batchSize: options.batchSize, maxSequenceLength: options.maxSequenceLength, shuffle: true,
            seed: options.seed)
        var (lossSum, lossSteps, windowTokens, trainedTokens) = (Float(0), 0, 0, 0)
        var first = 1
        if let path = options.resumeFrom {
            let progress = try TrainingCheckpoint.load(
                path, model: model, optimizer: optimizer, batchCount: batches.batchCount)
            batches.restore(generator: progress.generatorState, order: progress.order, position: progress.position)
            trainedTokens = progress.trainedTokens
            first = progress.step + 1
        }
        let step = valueAndGrad(model: model) { (m: TransformerModel, args: [Tensor]) in
            [FineTuningLoss.loss(m, tokens: args[0], mask: args[1])]
        }
        // Under data parallelism only rank 0 writes files.
        let writes = (group?.rank ?? 0) == 0
        func saveState(_ iteration: Int) throws -> String? {
            guard let folder = options.adapterPath else { return nil }
            guard writes else { return folder + "/" + TrainingCheckpoint.fileName }
            try Adapters.save(model, adapter, to: folder)
            let (generator, order, position) = batches.progressState
            let path = folder + "/" + TrainingCheckpoint.fileName
            try TrainingCheckpoint.save(
                model: model, optimizer: optimizer,
                progress: .init(
                    step: iteration, optimizerStep: optimizer.step, trainedTokens: trainedTokens,
                    generatorState: generator,
                    order: order, position: position, batchCount: batches.batchCount),
                to: path)
            return path
        }
        var lastValidation: Float? = nil
        var windowStart = ContinuousClock.now
        Memory.resetPeak()
        let accumulation = max(1, options.gradientAccumulationSteps)
        var accumulated: ModuleParameters? = nil
        var (communication, communicationSteps) = (0.0, 0)
        var iteration = first
        while iteration <= max(1, options.iterations) {
            // Asked between updates only: a state saved mid-accumulation would lose the partial sum.
            if (iteration - 1) % accumulation == 0, shouldStop() {
                let path = try saveState(iteration - 1)
                report(.stopped(step: iteration - 1, path: path))
                model.train(false)
                return lastValidation
            }
            if let valid,
                iteration == 1 || iteration % max(1, options.stepsPerEval) == 0 || iteration == options.iterations
            {
                let start = ContinuousClock.now
                let loss = evaluate(
                    model: model, valid, batchSize: options.batchSize, maxSequenceLength: options.maxSequenceLength,
                    batches: options.validationBatches)
                lastValidation = loss
                let seconds = (ContinuousClock.now - start).seconds
                report(.validation(step: iteration == 1 ? 0 : iteration, loss: loss, seconds: seconds))
                // The report's rates count training time only.
                windowStart += .seconds(seconds)
            }
            model.train(true)
            let batch = batches.next()
            let local = group.map { batch.rows(part(batch.offsets.count, $0)) } ?? batch
            let mask = FineTuningLoss.mask(offsets: local.offsets, lengths: local.lengths, width: local.tokens.dim(1))
            var (values, grads) = step(model, [local.tokens, mask])
            if let group {
                // Σ over ranks of (tokens_r / tokens) · grad_r: the whole batch's mean-loss gradient.
                let weight = Float(local.targetCount) / Float(max(batch.targetCount, 1))
                let scaled = grads.mapValues { $0 * (weight * Float(group.size)) }
                let weightedLoss = values[0] * weight
                eval(scaled, weightedLoss)
                let start = ContinuousClock.now
                grads = averageGradients(scaled, group: group)
                values[0] = allSum(weightedLoss, group: group)
                eval(grads, values[0])
                communication += (ContinuousClock.now - start).seconds
                communicationSteps += 1
            }
            if accumulation == 1 {
                optimizer.update(model: model, gradients: grads)
                eval(model, optimizer, values[0])
            } else {
                let sum = accumulated.map { Self.sum($0, grads) } ?? grads
                if iteration % accumulation == 0 {
                    optimizer.update(model: model, gradients: sum.mapValues { $0 / Float(accumulation) })
                    accumulated = nil
                    eval(model, optimizer, values[0])
                } else {
                    accumulated = sum
                    eval(sum, values[0])
                }
            }
            lossSum += values[0].item(Float.self)
            lossSteps += 1
            windowTokens += batch.targetCount
            trainedTokens += batch.targetCount
            if iteration % max(1, options.stepsPerReport) == 0 || iteration == options.iterations {
                let seconds = max((ContinuousClock.now - windowStart).seconds, 1e-9)
                report(
                    .train(
                        step: iteration, loss: lossSum / Float(lossSteps), learningRate: optimizer.currentLearningRate,
                        iterationsPerSecond: Double(lossSteps) / seconds,
                        tokensPerSecond: Double(windowTokens) / seconds,
                        trainedTokens: trainedTokens, peakMemoryBytes: Memory.peakBytes))
                (lossSum, lossSteps, windowTokens) = (0, 0, 0)
                if communicationSteps > 0 {
                    report(.communication(step: iteration, secondsPerStep: communication / Double(communicationSteps)))
                    (communication, communicationSteps) = (0, 0)
                }
                windowStart = ContinuousClock.now
            }
            if writes, let folder = options.adapterPath, iteration % max(1, options.saveEvery) == 0 {
                try Adapters.save(model, adapter, to: folder, fileName: checkpointName(iteration))
                if iteration % accumulation == 0 {
                    _ = try saveState(iteration)
                } else {
                    try Adapters.save(model, adapter, to: folder)
                }
                report(.saved(step: iteration, path: folder + "/" + Adapters.weightsFile))
            }
            iteration += 1
        }
        if writes, let folder = options.adapterPath,
            options.iterations % max(1, options.saveEvery) != 0 || first > options.iterations
        {
            _ = try saveState(options.iterations)
            report(.saved(step: options.iterations, path: folder + "/" + Adapters.weightsFile))
        }
        model.train(false)
        return lastValidation
    }

    /// Rank `group.rank`'s block of `count` rows, as even as possible (the first ranks take one more).
    static func part(_ count: Int, _ group: Group) -> Range<Int> {
        let (base, extra) = (count / group.size, count % group.size)
        let start = group.rank * base + min(group.rank, extra)
        return start..<(start + base + (group.rank < extra ? 1 : 0))
    }

    /// `a + b` per key (gradients of the same parameters).
    static func sum(_ a: ModuleParameters, _ b: ModuleParameters) -> ModuleParameters {
        let other = b.flatDictionary
        var out: [(key: String, value: Tensor)] = []
        for (key, value) in a.flattened() {
            if let g = other[key] { out.append((key, value + g)) } else { out.append((key, value)) }
        }
        return ModuleParameters(flattened: out)
    }

    /// mlx-lm's name for the adapters saved at `iteration`: `0000100_adapters.safetensors`.
    static func checkpointName(_ iteration: Int) -> String {
        let digits = String(iteration)
        return String(repeating: "0", count: max(0, 7 - digits.count)) + digits + "_" + Adapters.weightsFile
    }

    /// The mean loss per counted token over `batches` batches of `examples`
    /// (-1: all of them), in evaluation mode (mlx-lm's `evaluate`).
    public static func evaluate(
        model: TransformerModel, _ examples: [TokenizedExample], batchSize: Int, maxSequenceLength: Int, batches: Int
    ) -> Float {
        model.train(false)
        defer { model.train(true) }
        var iterator = BatchIterator(
            examples, batchSize: batchSize, maxSequenceLength: maxSequenceLength, shuffle: false)
        let count = batches < 0 ? iterator.batchCount : min(batches, iterator.batchCount)
        var (total, tokens) = (Double(0), 0)
        for _ in 0..<count {
            let batch = iterator.next()
            let mask = FineTuningLoss.mask(offsets: batch.offsets, lengths: batch.lengths, width: batch.tokens.dim(1))
            let loss = FineTuningLoss.loss(model, tokens: batch.tokens, mask: mask).item(Float.self)
            total += Double(loss) * Double(batch.targetCount)
            tokens += batch.targetCount
        }
        return tokens == 0 ? 0 : Float(total / Double(tokens))
    }
}
