// Whether the client of the request being served is still there. A
// streamed response notices a client that left when a write fails; a
// non-streamed one writes only at its end, so without this its sequence
// would run to max_tokens for nobody. The server keeps half-closed
// connections open (Hummingbird allows remote half-closure), so the
// channel stays active after the client closes its side: a handler at the
// front of the connection's pipeline records the end of its input instead,
// and `drive` (ServedModel.swift) checks it after every token.

import Hummingbird
import NIOCore
import Synchronization

/// The request context of `tessera serve`: Hummingbird's basic context and
/// the connection's channel.
public struct ServeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Records that a connection's input ended (the client closed or
/// half-closed it) or that the connection closed.
final class InputClosedWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    static let name = "tessera.input-closed"
    private let ended = Atomic<Bool>(false)

    var inputEnded: Bool { ended.load(ordering: .acquiring) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { ended.store(true, ordering: .releasing) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended.store(true, ordering: .releasing)
        context.fireChannelInactive()
    }
}

enum ClientConnection {
    /// The checks of the requests being served, by the task serving each. A
    /// `@TaskLocal` held this before; its `withValue` crashed in release
    /// builds (swift_task_localValuePush, Swift 6.3.1) on every request.
    private static let checks = Mutex<[Int: @Sendable () -> Bool]>([:])

    /// The current task's key in `checks` (nil outside a task).
    private static func currentTaskKey() -> Int? { withUnsafeCurrentTask { $0?.hashValue } }

    /// Whether the current request's client has gone (nil: not known, as in tests without a connection).
    static var gone: (@Sendable () -> Bool)? {
        guard let key = currentTaskKey() else { return nil }
        return checks.withLock { $0[key] }
    }

    /// Runs `body` with `gone` telling whether `channel`'s client has left
    /// (the watcher installed once per connection, at the front of its pipeline).
    static func watching<T>(_ channel: any Channel, _ body: () async -> T) async -> T {
        let watcher: InputClosedWatcher
        if let existing = try? await channel.pipeline.handler(type: InputClosedWatcher.self).get() {
            watcher = existing
        } else {
            let fresh = InputClosedWatcher()
            guard
                (try? await channel.pipeline.addHandler(fresh, name: InputClosedWatcher.name, position: .first).get())
                    != nil
            else { return await body() }
            watcher = fresh
        }
        guard let key = currentTaskKey() else { return await body() }
        let check: @Sendable () -> Bool = { watcher.inputEnded || !channel.isActive }
        checks.withLock { $0[key] = check }
        let result = await body()
        checks.withLock { $0[key] = nil }
        return result
    }
}
