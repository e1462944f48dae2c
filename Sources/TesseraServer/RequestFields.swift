// Reading a JSON request body field by field, each wrong type or range a
// 400 that names the field (OpenAI's `param`).

import Tessera

/// A request body's top-level object with typed, named accessors.
struct RequestFields {
    let object: JSONObject

    /// Parses `bytes` as a JSON object (a 400 otherwise).
    init(parsing bytes: some Collection<UInt8>) throws(APIError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw APIError.invalid("the request body is not valid JSON (\(error.description))")
        }
        guard case .object(let object) = value else { throw APIError.invalid("the request body must be a JSON object") }
        self.object = object
    }

    init(_ object: JSONObject) { self.object = object }

    /// The field, nil when absent or null.
    subscript(key: String) -> JSONValue? {
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let v = self[key] else { return nil }
        guard let s = v.string else { throw APIError.invalid("'\(key)' must be a string", param: key) }
        return s
    }

    func requiredString(_ key: String) throws(APIError) -> String {
        guard let s = try string(key) else { throw APIError.invalid("'\(key)' is required", param: key) }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard let b = v.bool else { throw APIError.invalid("'\(key)' must be a boolean", param: key) }
        return b
    }

    /// An integer in `range` (a JSON number with no fraction).
    func int(_ key: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = self[key] else { return nil }
        guard case .int(let i) = v else {
            if case .double(let d) = v, d.rounded() == d, abs(d) < 9e15 { return try checked(Int(d), key, range) }
            throw APIError.invalid("'\(key)' must be an integer", param: key)
        }
        return try checked(i, key, range)
    }

    private func checked(_ i: Int, _ key: String, _ range: ClosedRange<Int>) throws(APIError) -> Int {
        guard range.contains(i) else {
            let upper = range.upperBound == Int.max ? "" : " and at most \(range.upperBound)"
            throw APIError.invalid("'\(key)' must be at least \(range.lowerBound)\(upper), got \(i)", param: key)
        }
        return i
    }

    /// A finite number in `range`.
    func number(_ key: String, in range: ClosedRange<Double>) throws(APIError) -> Double? {
        guard let v = self[key] else { return nil }
        guard let d = v.double, d.isFinite else { throw APIError.invalid("'\(key)' must be a number", param: key) }
        guard range.contains(d) else {
            throw APIError.invalid(
                "'\(key)' must be in [\(range.lowerBound), \(range.upperBound)], got \(d)", param: key)
        }
        return d
    }

    func array(_ key: String) throws(APIError) -> [JSONValue]? {
        guard let v = self[key] else { return nil }
        guard let a = v.array else { throw APIError.invalid("'\(key)' must be an array", param: key) }
        return a
    }

    func objectField(_ key: String) throws(APIError) -> RequestFields? {
        guard let v = self[key] else { return nil }
        guard let o = v.object else { throw APIError.invalid("'\(key)' must be an object", param: key) }
        return RequestFields(o)
    }

    /// A string or an array of strings (`stop`, `stop_sequences`): at most
    /// `limit`, none empty.
    func stopStrings(_ key: String, limit: Int) throws(APIError) -> [String] {
        guard let v = self[key] else { return [] }
        var stops: [String]
        if let s = v.string {
            stops = [s]
        } else if let a = v.array {
            stops = []
            for item in a {
                guard let s = item.string else { throw APIError.invalid("'\(key)' must hold strings", param: key) }
                stops.append(s)
            }
        } else {
            throw APIError.invalid("'\(key)' must be a string or an array of strings", param: key)
        }
        guard stops.count <= limit else {
            throw APIError.invalid("'\(key)' holds at most \(limit) strings", param: key)
        }
        guard !stops.contains(where: \.isEmpty) else {
            throw APIError.invalid("'\(key)' holds an empty string", param: key)
        }
        return stops
    }
}
