// Errors as each API writes them: OpenAI's {"error": {message, type, param,
// code}} and Anthropic's {"type": "error", "error": {type, message}}, with
// the HTTP status each kind of error gets.

import HTTPTypes
import Tessera
import TesseraLM

/// Which wire format a request came in (errors answer in the same one).
public enum APIFlavor: Sendable {
    case openAI, anthropic
}

/// A request the server refuses or could not serve.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case invalidRequest, authentication, notFound, tooLarge, overloaded, unavailable, server
    }

    public var kind: Kind
    public var message: String
    /// The request field at fault (OpenAI's `param`).
    public var param: String?
    /// Seconds for Retry-After (overloaded).
    public var retryAfter: Int?

    public init(_ kind: Kind, _ message: String, param: String? = nil, retryAfter: Int? = nil) {
        self.kind = kind
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
    }

    public var description: String { message }

    public static func invalid(_ message: String, param: String? = nil) -> APIError {
        APIError(.invalidRequest, message, param: param)
    }

    public var status: HTTPResponse.Status {
        switch kind {
        case .invalidRequest: .badRequest
        case .authentication: .unauthorized
        case .notFound: .notFound
        case .tooLarge: .contentTooLarge
        case .overloaded: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .server: .internalServerError
        }
    }

    /// The status in `flavor`'s convention: as `status`, except that a full
    /// queue is Anthropic's 529 overloaded_error (what its SDKs retry, with
    /// Retry-After) where OpenAI's is 429.
    public func status(_ flavor: APIFlavor) -> HTTPResponse.Status {
        if flavor == .anthropic, kind == .overloaded {
            return HTTPResponse.Status(code: 529, reasonPhrase: "Overloaded")
        }
        return status
    }

    /// The error body in `flavor`'s shape.
    public func json(_ flavor: APIFlavor) -> JSONValue {
        switch flavor {
        case .openAI:
            let type: String =
                switch kind {
                case .invalidRequest, .tooLarge, .notFound: "invalid_request_error"
                case .authentication: "authentication_error"
                case .overloaded: "rate_limit_error"
                case .unavailable: "service_unavailable"
                case .server: "server_error"
                }
            let code: JSONValue =
                switch kind {
                case .authentication: "invalid_api_key"
                case .notFound: "model_not_found"
                case .overloaded: "rate_limit_exceeded"
                case .tooLarge: "request_too_large"
                default: .null
                }
            return .object(
                JSONObject([
                    (
                        "error",
                        .object(
                            JSONObject([
                                ("message", .string(message)), ("type", .string(type)),
                                ("param", param.map(JSONValue.string) ?? .null), ("code", code)
                            ]))
                    )
                ]))
        case .anthropic:
            let type: String =
                switch kind {
                case .invalidRequest: "invalid_request_error"
                case .authentication: "authentication_error"
                case .notFound: "not_found_error"
                case .tooLarge: "request_too_large"
                case .overloaded: "overloaded_error"
                case .unavailable: "overloaded_error"
                case .server: "api_error"
                }
            return .object(
                JSONObject([
                    ("type", "error"),
                    ("error", .object(JSONObject([("type", .string(type)), ("message", .string(message))])))
                ]))
        }
    }

    /// The API error for an engine's refusal.
    public init(_ error: EngineError) {
        switch error {
        case .overloaded(let seconds): self.init(.overloaded, error.description, retryAfter: seconds)
        case .contextExceeded: self.init(.invalidRequest, error.description, param: "max_tokens")
        case .invalidRequest(let m): self.init(.invalidRequest, m)
        case .shuttingDown: self.init(.unavailable, error.description)
        case .evaluation: self.init(.server, error.description)
        }
    }

    /// Any error met while serving, as an API error.
    public static func from(_ error: any Error) -> APIError {
        if let e = error as? APIError { return e }
        if let e = error as? EngineError { return APIError(e) }
        return APIError(.server, "\(error)")
    }
}
