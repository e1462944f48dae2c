// `tessera lora -c config.yaml`: mlx-lm's lora_config.yaml keys, read with
// Yams into typed values. A key this file does not know is an error naming
// it; so is a value of the wrong type. Keys mlx-lm has for services Tessera
// does not offer (wandb, report_to, hf_dataset, ...) may be present only as null.
// The learning-rate schedule is mlx-lm's `build_schedule`: `name` is an MLX
// scheduler (cosine_decay, linear_schedule, exponential_decay, step_decay),
// `arguments` its positional arguments (the first is the initial rate),
// `warmup` steps of a linear ramp from `warmup_init`, joined at warmup + 1.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraNN
import TesseraOptimizers
import Yams

/// Errors from a lora config file.
enum LoRAConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case unknownKey(String)
    case wrongType(key: String, expected: String)
    case invalid(key: String, reason: String)

    var description: String {
        switch self {
        case .unreadable(let why): return "cannot read the config file: \(why)"
        case .unknownKey(let key): return "the config file has an unknown key \"\(key)\""
        case .wrongType(let key, let expected): return "config key \"\(key)\" must be \(expected)"
        case .invalid(let key, let reason): return "config key \"\(key)\": \(reason)"
        }
    }
}

/// A learning-rate schedule as mlx-lm's `lr_schedule` describes it.
struct ScheduleSpec: Equatable {
    var name: String
    var arguments: [Double]
    var warmup = 0
    var warmupInit: Double = 0

    static let names = ["cosine_decay", "linear_schedule", "exponential_decay", "step_decay"]

    /// The schedule, its arguments checked (a bad one is a typed error, never a trap).
    func learningRate() throws -> LearningRate {
        func argument(_ i: Int) -> Double? { i < arguments.count ? arguments[i] : nil }
        func count(_ range: ClosedRange<Int>, _ names: String) throws {
            guard range.contains(arguments.count) else {
                throw LoRAConfigError.invalid(key: "lr_schedule.arguments", reason: "\(name) takes \(names)")
            }
        }
        func steps(_ i: Int) throws -> Int {
            guard let v = argument(i), v >= 1, v < 1e9, v == v.rounded() else {
                throw LoRAConfigError.invalid(
                    key: "lr_schedule.arguments",
                    reason: "argument \(i + 1) of \(name) must be a positive whole number of steps")
            }
            return Int(v)
        }
        guard arguments.allSatisfy(\.isFinite) else {
            throw LoRAConfigError.invalid(key: "lr_schedule.arguments", reason: "must be finite numbers")
        }
        let schedule: LearningRate
        switch name {
        case "cosine_decay":
            try count(2...3, "(init, decay_steps[, end])")
            schedule = Schedules.cosineDecay(
                Float(arguments[0]), decaySteps: try steps(1), end: Float(argument(2) ?? 0))
        case "linear_schedule":
            try count(3...3, "(init, end, steps)")
            schedule = Schedules.linear(from: Float(arguments[0]), to: Float(arguments[1]), steps: try steps(2))
        case "exponential_decay":
            try count(2...2, "(init, decay_rate)")
            schedule = Schedules.exponentialDecay(Float(arguments[0]), decayRate: Float(arguments[1]))
        case "step_decay":
            try count(3...3, "(init, decay_rate, step_size)")
            schedule = Schedules.stepDecay(Float(arguments[0]), decayRate: Float(arguments[1]), stepSize: try steps(2))
        default:
            throw LoRAConfigError.invalid(
                key: "lr_schedule.name", reason: "\(name) is not one of \(Self.names.joined(separator: ", "))")
        }
        guard warmup > 0 else { return schedule }
        let ramp = Schedules.linear(from: Float(warmupInit), to: Float(arguments[0]), steps: warmup)
        return Schedules.join([ramp, schedule], boundaries: [warmup + 1])
    }
}

/// The values of a lora config file, by mlx-lm key.
struct LoRAConfigFile {
    /// Keys read (mlx-lm's `CONFIG_DEFAULTS` and lora_config.yaml).
    static let keys: Set<String> = [
        "model", "train", "data", "fine_tune_type", "optimizer", "optimizer_config", "mask_prompt", "num_layers",
        "batch_size", "iters", "val_batches", "learning_rate", "steps_per_report", "steps_per_eval",
        "resume_adapter_file", "adapter_path", "save_every", "test", "test_batches", "max_seq_length",
        "grad_checkpoint", "grad_accumulation_steps", "lr_schedule", "lora_parameters", "seed"
    ]
    /// mlx-lm keys for what Tessera does not do; accepted only as null.
    static let nullOnly: Set<String> = ["wandb", "report_to", "project_name", "hf_dataset", "config"]

    var values: [String: JSONValue]

    /// Reads and checks `path` (at most 1 MiB of YAML, one mapping, no aliases).
    static func load(_ path: String) throws -> LoRAConfigFile {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path, maxBytes: 1 << 20) } catch {
            throw LoRAConfigError.unreadable("\(path): \(error)")
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }

    static func parse(_ text: String) throws -> LoRAConfigFile {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw LoRAConfigError.unreadable("\(error)") }
        guard let node else { return LoRAConfigFile(values: [:]) }
        var budget = 100_000
        guard case .object(let object) = try json(node, depth: 0, budget: &budget) else {
            throw LoRAConfigError.unreadable("the file is not a mapping of keys to values")
        }
        var values: [String: JSONValue] = [:]
        for (key, value) in object {
            if nullOnly.contains(key) {
                guard value.isNull else {
                    throw LoRAConfigError.invalid(key: key, reason: "is not supported by tessera lora (leave it null)")
                }
                continue
            }
            guard keys.contains(key) else { throw LoRAConfigError.unknownKey(key) }
            if !value.isNull { values[key] = value }
        }
        let file = LoRAConfigFile(values: values)
        try file.checkNested()
        return file
    }

    /// A YAML node as JSON (scalars resolved: null, bool, int, float, else string;
    /// "1e-5", which YAML 1.1 leaves a string, as mlx-lm's loader reads it: a number).
    /// At most `budget` values in all, so aliases repeated into a "billion laughs" stop early.
    static func json(_ node: Node, depth: Int, budget: inout Int) throws -> JSONValue {
        guard depth < 16 else { throw LoRAConfigError.unreadable("nested more than 16 levels") }
        budget -= 1
        guard budget >= 0 else { throw LoRAConfigError.unreadable("more than 100000 values (aliases repeated?)") }
        switch node {
        case .alias: throw LoRAConfigError.unreadable("an unresolved YAML alias")
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for item in sequence { items.append(try json(item, depth: depth + 1, budget: &budget)) }
            return .array(items)
        case .mapping(let mapping):
            var fields: [(String, JSONValue)] = []
            for (key, value) in mapping {
                guard let name = key.string else { throw LoRAConfigError.unreadable("a key that is not a string") }
                fields.append((name, try json(value, depth: depth + 1, budget: &budget)))
            }
            return .object(JSONObject(fields))
        case .scalar(let scalar):
            if scalar.style == .plain {
                if node.null != nil { return .null }
                if let b = node.bool { return .bool(b) }
                if let i = node.int { return .int(i) }
                if let d = node.float { return .double(d) }
                if let d = Double(scalar.string), scalar.string.contains(where: { $0 == "e" || $0 == "E" }) {
                    return .double(d)
                }
            }
            return .string(scalar.string)
        }
    }

    /// Sub-keys of lora_parameters and lr_schedule.
    func checkNested() throws {
        if let lora = values["lora_parameters"] {
            guard case .object(let object) = lora else {
                throw LoRAConfigError.wrongType(key: "lora_parameters", expected: "a mapping")
            }
            for key in object.map(\.key) where !["keys", "rank", "scale", "dropout", "alpha"].contains(key) {
                throw LoRAConfigError.unknownKey("lora_parameters." + key)
            }
        }
        if let schedule = values["lr_schedule"] {
            guard case .object(let object) = schedule else {
                throw LoRAConfigError.wrongType(key: "lr_schedule", expected: "a mapping")
            }
            for key in object.map(\.key) where !["name", "arguments", "warmup", "warmup_init"].contains(key) {
                throw LoRAConfigError.unknownKey("lr_schedule." + key)
            }
        }
        if let config = values["optimizer_config"], config.object == nil {
            throw LoRAConfigError.wrongType(
                key: "optimizer_config", expected: "a mapping of optimizer names to settings")
        }
    }

    // Typed reads: nil when absent, a typed error when of the wrong type.

    func int(_ key: String) throws -> Int? {
        guard let v = values[key] else { return nil }
        guard let i = v.int else { throw LoRAConfigError.wrongType(key: key, expected: "an integer") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let v = values[key] else { return nil }
        guard let d = v.double ?? v.int.map(Double.init) else {
            throw LoRAConfigError.wrongType(key: key, expected: "a number")
        }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = values[key] else { return nil }
        guard let b = v.bool else { throw LoRAConfigError.wrongType(key: key, expected: "true or false") }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = values[key] else { return nil }
        guard let s = v.string else { throw LoRAConfigError.wrongType(key: key, expected: "a string") }
        return s
    }

    /// `lora_parameters`: rank, scale (or mlx-lm's older alpha), dropout, keys.
    func loraParameters() throws -> (rank: Int?, scale: Double?, dropout: Double?, keys: [String]?) {
        guard case .object(let object)? = values["lora_parameters"] else { return (nil, nil, nil, nil) }
        func number(_ key: String) throws -> Double? {
            guard let v = object[key], !v.isNull else { return nil }
            guard let d = v.double ?? v.int.map(Double.init) else {
                throw LoRAConfigError.wrongType(key: "lora_parameters." + key, expected: "a number")
            }
            return d
        }
        var rank: Int? = nil
        if let r = try number("rank") {
            guard r == r.rounded(), r >= 1, r < 1_048_576 else {
                throw LoRAConfigError.wrongType(key: "lora_parameters.rank", expected: "a positive integer")
            }
            rank = Int(r)
        }
        var keys: [String]? = nil
        if let list = object["keys"], !list.isNull {
            guard let items = list.array, items.allSatisfy({ $0.string != nil }) else {
                throw LoRAConfigError.wrongType(key: "lora_parameters.keys", expected: "a list of module paths")
            }
            keys = items.compactMap(\.string)
        }
        return (rank, try number("scale") ?? number("alpha"), try number("dropout"), keys)
    }

    /// `lr_schedule`, if any.
    func schedule() throws -> ScheduleSpec? {
        guard case .object(let object)? = values["lr_schedule"] else { return nil }
        guard let name = object["name"]?.string else {
            throw LoRAConfigError.wrongType(key: "lr_schedule.name", expected: "a scheduler name")
        }
        guard let list = object["arguments"]?.array else {
            throw LoRAConfigError.wrongType(key: "lr_schedule.arguments", expected: "a list of numbers")
        }
        let arguments = try list.map { v -> Double in
            guard let d = v.double ?? v.int.map(Double.init) else {
                throw LoRAConfigError.wrongType(key: "lr_schedule.arguments", expected: "a list of numbers")
            }
            return d
        }
        var spec = ScheduleSpec(name: name, arguments: arguments)
        if let w = object["warmup"], !w.isNull {
            guard let steps = w.int, steps >= 0, steps < 1 << 30 else {
                throw LoRAConfigError.wrongType(key: "lr_schedule.warmup", expected: "a number of steps (0 or more)")
            }
            spec.warmup = steps
        }
        if let w = object["warmup_init"], !w.isNull {
            guard let d = w.double ?? w.int.map(Double.init), d.isFinite else {
                throw LoRAConfigError.wrongType(key: "lr_schedule.warmup_init", expected: "a number")
            }
            spec.warmupInit = d
        }
        return spec
    }

    /// `optimizer_config.<name>`: the optimizer's settings (empty when absent).
    func optimizerSettings(_ name: String) throws -> JSONObject {
        guard case .object(let all)? = values["optimizer_config"], let entry = all[name], !entry.isNull else {
            return JSONObject()
        }
        guard case .object(let settings) = entry else {
            throw LoRAConfigError.wrongType(key: "optimizer_config.\(name)", expected: "a mapping")
        }
        return settings
    }
}
