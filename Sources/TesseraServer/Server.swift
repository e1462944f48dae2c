// The server: routes, the API-key check, CORS, request metrics, and its
// lifecycle (bind, serve, and on SIGTERM/SIGINT stop accepting, end the
// engine's sequences and return).

import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Tessera
import TesseraLM

/// How the server listens and what it allows.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0: any free port (the bound address is reported to `onListening`).
    public var port = 8080
    /// Required on every route but /health (Authorization: Bearer, or x-api-key).
    public var apiKey: String?
    /// Access-Control-Allow-Origin for browsers (nil: no CORS headers).
    public var corsOrigin: String?
    public var maxBodyBytes = 4 << 20

    public init() {}
}

/// The routes over one served model.
public struct Server: Sendable {
    public let model: ServedModel
    public let configuration: ServerConfiguration
    public let metrics = ServerMetrics()
    let logger: Logger

    public init(model: ServedModel, configuration: ServerConfiguration, logger: Logger = Logger(label: "tessera.serve"))
    {
        self.model = model
        self.configuration = configuration
        self.logger = logger
    }

    /// The flavor a path's errors take.
    static func flavor(of path: String) -> APIFlavor {
        path.hasPrefix("/v1/messages") ? .anthropic : .openAI
    }

    public func makeRouter() -> Router<ServeRequestContext> {
        let router = Router(context: ServeRequestContext.self)
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        if let origin = configuration.corsOrigin {
            router.add(
                middleware: CORSMiddleware(
                    allowOrigin: origin == "*" ? .all : .custom(origin),
                    allowHeaders: [.contentType, .authorization, .xAPIKey, HTTPField.Name("anthropic-version")!],
                    allowMethods: [.get, .post, .options]))
        }
        if let key = configuration.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }

        router.get("/health") { _, _ in HTTP.json(.object(JSONObject([("status", "ok")]))) }
        router.get("/metrics") { _, _ in
            HTTP.text(metrics.render(model.engine.snapshot()), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/v1/models") { _, _ in models() }
        router.post("/v1/chat/completions") { request, context in
            await ClientConnection.watching(context.channel) {
                await handle(request, .openAI) { try await chatCompletions($0) }
            }
        }
        router.post("/v1/completions") { request, context in
            await ClientConnection.watching(context.channel) {
                await handle(request, .openAI) { try await completions($0) }
            }
        }
        router.post("/v1/messages") { request, context in
            await ClientConnection.watching(context.channel) {
                await handle(request, .anthropic) { try await messages($0) }
            }
        }
        router.post("/v1/messages/count_tokens") { request, _ in
            await handle(request, .anthropic) { try countTokens($0) }
        }
        return router
    }

    /// Reads and parses the body, runs `body`, and turns any error into the API's error response.
    func handle(_ request: Request, _ flavor: APIFlavor, _ body: (RequestFields) async throws -> Response) async
        -> Response
    {
        var request = request
        do {
            let bytes = try await HTTP.body(of: &request, limit: configuration.maxBodyBytes)
            let fields = try RequestFields(parsing: bytes.readableBytesView)
            return try await body(fields)
        } catch {
            let apiError = APIError.from(error)
            if apiError.kind == .server { logger.error("request failed: \(apiError.message)") }
            return HTTP.error(apiError, flavor)
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts the engine down and returns.
    /// `onListening` gets the bound "host:port" once the server accepts connections.
    public func run(onListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        let app = Application(
            router: makeRouter(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "tessera"),
            onServerRunning: { channel in
                let address = channel.localAddress
                let host = address?.ipAddress ?? configuration.host
                let port = address?.port ?? configuration.port
                onListening(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            },
            logger: logger)
        // The engine's service comes last so a graceful shutdown reaches it
        // first (services stop in reverse order): its sequences end, then
        // the HTTP server finishes the open requests and closes.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: EngineService(engine: model.engine))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Ends the engine's sequences when a graceful shutdown begins, so open
/// streams finish and the HTTP server can close its connections.
struct EngineService: Service {
    let engine: any GenerationEngine

    func run() async throws {
        try? await gracefulShutdown()
        await engine.shutdown()
    }
}

/// Counts every response by route and status.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        do {
            let response = try await next(request, context)
            metrics.recordRequest(route: path, status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            metrics.recordRequest(route: path, status: error.status.code)
            throw error
        } catch {
            metrics.recordRequest(route: path, status: 500)
            throw error
        }
    }
}

/// Requires the API key (Bearer or x-api-key) on everything but /health and CORS preflights.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        if path == "/health" || request.method == .options { return try await next(request, context) }
        var offered = request.headers[.xAPIKey]
        if let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") {
            offered = String(authorization.dropFirst("bearer ".count))
        }
        guard let offered, constantTimeEqual(offered, key) else {
            let message =
                offered == nil ? "an API key is required (Authorization: Bearer KEY, or x-api-key)" : "invalid API key"
            return HTTP.error(APIError(.authentication, message), Server.flavor(of: path))
        }
        return try await next(request, context)
    }
}

/// Compares without stopping at the first difference.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = x.count ^ y.count
    for i in 0..<max(x.count, y.count) {
        diff |= Int((i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0))
    }
    return diff == 0
}
