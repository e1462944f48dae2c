// Hummingbird glue: JSON and server-sent-event responses, reading the body
// within the size limit, and the errors in each API's shape.

import HTTPTypes
import Hummingbird
import NIOCore
import Tessera

extension HTTPField.Name {
    static let xAPIKey = HTTPField.Name("x-api-key")!
}

enum HTTP {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: value.compactText)))
    }

    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(
            status: .ok, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ error: APIError, _ flavor: APIFlavor) -> Response {
        var response = json(error.json(flavor), status: error.status(flavor))
        if let seconds = error.retryAfter { response.headers[.retryAfter] = String(seconds) }
        return response
    }

    /// Oversized bodies up to this size are read and dropped before the 413.
    static let drainLimit = 64 << 20

    /// The body, at most `limit` bytes (413 otherwise).
    static func body(of request: inout Request, limit: Int) async throws(APIError) -> ByteBuffer {
        let tooLarge = APIError(.tooLarge, "the request body is larger than the server's limit of \(limit) bytes")
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            // Read and drop a body that is not too far over, so a client that
            // sends all of it before reading (most do) gets the 413.
            if declared <= drainLimit {
                var seen = 0
                do {
                    for try await chunk in request.body {
                        seen += chunk.readableBytes
                        if seen > drainLimit { break }
                    }
                } catch {}
            }
            throw tooLarge
        }
        do {
            return try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        } catch {
            throw APIError.invalid("the request body could not be read: \(error)")
        }
    }

    /// A streaming response of server-sent events; `produce` writes them.
    static func eventStream(_ produce: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void)
        -> Response
    {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "keep-alive"],
            body: ResponseBody { writer in
                try await produce(&writer)
                try await writer.finish(nil)
            })
    }
}

/// Server-sent-event framing: `event:` when named, `data:` per line, a blank line after.
public enum ServerSentEvent {
    public static func frame(_ data: String, event: String? = nil) -> String {
        var out = event.map { "event: \($0)\n" } ?? ""
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { out += "data: \(line)\n" }
        return out + "\n"
    }
}

extension ResponseBodyWriter {
    mutating func send(_ value: JSONValue, event: String? = nil) async throws {
        try await write(ByteBuffer(string: ServerSentEvent.frame(value.compactText, event: event)))
    }

    mutating func sendDone() async throws {
        try await write(ByteBuffer(string: ServerSentEvent.frame("[DONE]")))
    }
}
