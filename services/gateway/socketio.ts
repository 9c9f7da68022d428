/**
 * The socket.io transport of terminal sessions: namespace `/terminal`, the handshake's
 * `auth: { token, concurrency?, capabilities? }`, one socket.io event per message.
 */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import { Server as IoServer, type Namespace, type Socket } from "socket.io";
import type { SocketReply, TerminalClientToServer, TerminalServerToClient } from "../../lib/contracts.ts";
import { Errors, toErrorPayload } from "../../lib/errors.ts";
import { addSecureHeaders } from "../../lib/http/headers.ts";
import { parseCapabilities } from "./admission.ts";
import type { TerminalHub } from "./hub.ts";
import { INBOUND, checkDepth, socketError } from "./messages.ts";
import { TerminalSession, type DisconnectReason, type OutboundEvent, type SessionInfo } from "./sessions.ts";

export type TerminalSocket = Socket<TerminalClientToServer, TerminalServerToClient>;
export type TerminalNamespace = Namespace<TerminalClientToServer, TerminalServerToClient>;

export class SocketIoSession extends TerminalSession {
	readonly transport = "socket.io" as const;
	private readonly socket: TerminalSocket;

	constructor(socket: TerminalSocket, info: SessionInfo) {
		super(info);
		this.socket = socket;
	}

	send(message: OutboundEvent): void {
		(this.socket.emit as (event: string, data: unknown) => boolean)(message.event, message.data);
	}

	close(): void {
		this.socket.disconnect(true);
	}
}

/** socket.io's reason for a disconnect, as the metrics count it. */
function disconnectReason(reason: string): DisconnectReason {
	if (reason === "client namespace disconnect" || reason === "server namespace disconnect") return "normal";
	if (reason === "ping timeout") return "heartbeat_timeout";
	return "transport_error";
}

/** A connect refused through `next(err)`: the client's `connect_error` carries the payload as `data`. */
export function refusal(err: unknown): Error {
	const payload = toErrorPayload(err);
	return Object.assign(new Error(payload.message), { data: payload });
}

export interface IoOptions {
	/** Largest inbound message, bytes. */
	maxMessageBytes: number;
	/** Origins whose pages may use socket.io's HTTP long-polling (exact); empty: none, no CORS header. */
	corsOrigins: readonly string[];
	/** The server is HTTPS: answers carry Strict-Transport-Security. */
	tls: boolean;
}

/** socket.io on `server`; the root namespace refuses everyone. */
export function createIoServer(server: HttpServer, options: IoOptions): IoServer {
	const io = new IoServer(server, {
		path: "/socket.io/",
		serveClient: false,
		// Leave other upgrade paths (/ws/…) to their own handler.
		destroyUpgrade: false,
		maxHttpBufferSize: options.maxMessageBytes,
		// CORS closed unless origins are listed; never credentials: tokens go in the handshake, not in cookies.
		...(options.corsOrigins.length > 0 ? { cors: { origin: [...options.corsOrigins], credentials: false } } : {})
	});
	// socket.io answers its polling requests itself, past the api's handler: the same headers here.
	io.engine.on("initial_headers", (headers: Record<string, string>, req: IncomingMessage) =>
		addSecureHeaders(headers, req, options.tls)
	);
	io.engine.on("headers", (headers: Record<string, string>, req: IncomingMessage) =>
		addSecureHeaders(headers, req, options.tls)
	);
	io.of("/").use((_socket, next) => next(refusal(Errors.badRequest("Use namespace /terminal or /client"))));
	return io;
}

/** Serves terminals on `/terminal`. */
export function attachTerminals(io: IoServer, hub: TerminalHub): TerminalNamespace {
	const ns: TerminalNamespace = io.of("/terminal");
	ns.use((socket, next) => {
		const auth = (socket.handshake.auth ?? {}) as { token?: unknown; concurrency?: unknown; capabilities?: unknown };
		const query = socket.handshake.query;
		hub.admit(auth.token ?? query.token, null, auth.concurrency ?? query.concurrency).then(
			({ terminal, concurrency }) => {
				socket.data.session = new SocketIoSession(socket, {
					terminalId: terminal.id,
					concurrency,
					labels: terminal.labels,
					capabilities: parseCapabilities(auth.capabilities ?? query.capabilities)
				});
				next();
			},
			err => next(refusal(err))
		);
	});
	ns.on("connection", socket => {
		const session = socket.data.session as SocketIoSession;
		// The handshake has been read: the connection's first HTTP request (its headers, its
		// parser's state) would otherwise stay in memory as long as the connection, KiBs each.
		(socket.conn as { request: IncomingMessage | null }).request = null;
		// One listener for every event rather than one per type: less memory per connection.
		socket.onAny((event: string, ...args: unknown[]) => {
			session.touch();
			if (!INBOUND.has(event))
				return void socket.emit("error", socketError(Errors.badRequest(`Unknown event '${event}'`), event));
			const reply = typeof args[args.length - 1] === "function" ? (args.pop() as SocketReply) : undefined;
			let answer;
			try {
				// Before anything walks the arguments: the validator, the transporter's encoder, a logger.
				checkDepth(args);
				answer = hub.inbound(session, event, args[0]);
			} catch (err) {
				answer = Promise.reject(err as Error);
			}
			answer.then(
				result => reply?.(result),
				err => {
					const error = socketError(err, event);
					socket.emit("error", error);
					reply?.({ ok: false, error });
				}
			);
		});
		socket.on("disconnect", reason => void hub.unregister(session, disconnectReason(reason)));
		void hub.register(session);
	});
	return ns;
}
