/**
 * gateway: the live connections of this process. Terminals connect on socket.io `/terminal` or
 * raw WebSocket `/ws/terminal/:id`; clients follow tasks on `/client` or `/ws/client/:taskId`.
 * Every inbound terminal message becomes a dispatcher call made as that terminal; the
 * dispatcher reaches a terminal through `gateway.push` on the node that holds it.
 */
import http, { type IncomingMessage, type Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Server as IoServer, type Namespace, type Socket } from "socket.io";
import { WebSocketServer, type WebSocket } from "ws";
import type {
	ClientClientToServer,
	ClientServerToClient,
	PushManyParams,
	Presence,
	Principal,
	RepliesParams,
	ReplyAnswer,
	ResultStatus,
	SocketErrorPayload,
	SocketReply,
	TaskProgressEvent,
	TaskQueryView,
	TaskStatusEvent,
	TaskStatusesEvent,
	TerminalActiveEvent,
	TerminalClientToServer,
	TerminalRecord,
	TerminalRevokedEvent,
	TerminalReply,
	TerminalServerToClient
} from "../lib/contracts.ts";
import { ErrorTypes, Errors, fromErrorPayload, toErrorPayload } from "../lib/errors.ts";
import { nodesRunning } from "../lib/membership.ts";
import { OwnerCache } from "../lib/owners.ts";
import { ReplyBatcher } from "./gateway/replies.ts";
import { SocketIoSession, WebSocketSession, type OutboundEvent, type TerminalSession } from "./gateway/sessions.ts";

export interface GatewaySettings extends ServiceSettingSchema {
	/** Port of the gateway's own HTTP server, used only when no `api` runs in this process. @defaultValue 3001 */
	port: number;
	/** Silence after which a terminal is offline, ms. @defaultValue 60000 */
	heartbeatTimeout: number;
	/** How often silent sessions are looked for, ms. @defaultValue 5000 */
	heartbeatCheckInterval: number;
	/** How often terminal activity is reported to the cluster, ms. @defaultValue 5000 */
	activityFlushInterval: number;
	/** Largest inbound message, bytes. @defaultValue 1 MiB */
	maxMessageBytes: number;
	/** Acks and results sent to the dispatcher in one call at most (more wait for the next). @defaultValue 500 */
	replyBatchSize: number;
}

type ClientSocket = Socket<ClientClientToServer, ClientServerToClient>;
const INBOUND: ReadonlySet<string> = new Set(["heartbeat", "ack", "progress", "result"]);

interface GatewayVars {
	server: HttpServer;
	ownServer: HttpServer | null;
	io: IoServer;
	terminalNs: Namespace<TerminalClientToServer, TerminalServerToClient>;
	clientNs: Namespace<ClientClientToServer, ClientServerToClient>;
	wss: WebSocketServer;
	sessions: Map<string, TerminalSession>;
	wsFollowers: Map<string, Set<WebSocket>>;
	replies: ReplyBatcher;
	timers: NodeJS.Timeout[];
	onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}
interface GatewayMethods {
	verify(token: unknown): Promise<Principal>;
	openSession(
		token: unknown,
		claimedId: string | null,
		advertised: unknown
	): Promise<{ terminal: TerminalRecord; concurrency: number }>;
	register(session: TerminalSession): Promise<void>;
	unregister(session: TerminalSession): Promise<void>;
	inbound(session: TerminalSession, type: string, data: unknown): Promise<Record<string, unknown>>;
	handle(session: TerminalSession, type: string, data: unknown): Promise<Record<string, unknown>>;
	sendReplies(replies: TerminalReply[]): Promise<ReplyAnswer[]>;
	currentStatus(taskId: string, principal: Principal): Promise<TaskStatusEvent>;
	setupSocketIo(): void;
	setupWebSocket(): void;
	upgradeTerminal(req: IncomingMessage, socket: Duplex, head: Buffer, terminalId: string): Promise<void>;
	upgradeClient(req: IncomingMessage, socket: Duplex, head: Buffer, taskId: string): Promise<void>;
	checkHeartbeats(): void;
	flushActivity(): void;
}
type GatewayThis = Service<GatewaySettings> & GatewayVars & GatewayMethods;

function bearer(req: IncomingMessage): string | null {
	const header = req.headers.authorization;
	if (header?.startsWith("Bearer ")) return header.slice(7).trim();
	return new URL(req.url ?? "/", "http://x").searchParams.get("token");
}

/** Refuses a WebSocket upgrade with an HTTP status and the error as JSON. */
function refuseUpgrade(socket: Duplex, err: unknown): void {
	const payload = toErrorPayload(err);
	const code = payload.code >= 400 && payload.code < 600 ? payload.code : 500;
	const body = JSON.stringify(payload);
	socket.end(
		`HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? "Error"}\r\nContent-Type: application/json\r\n` +
			`Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
	);
}

/** `["command","http"]` or `"command,http"` → a list; anything else → undefined (any type). */
function parseCapabilities(value: unknown): string[] | undefined {
	const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : null;
	if (!list) return undefined;
	const names = list
		.filter((v): v is string => typeof v === "string")
		.map(v => v.trim())
		.filter(Boolean);
	return names.slice(0, 64);
}

/** Terminals per `terminal.active` event: about 0.3 MiB of JSON, well under NATS's largest message. */
const ACTIVITY_CHUNK = 5000;

const HEARTBEAT_ANSWER = Promise.resolve({ ok: true as const });

/** The dispatcher's reply of an `ack` or `result` message (the fields it takes), for this terminal. */
function toReply(terminalId: string, kind: "ack" | "result", data: unknown): TerminalReply {
	if (typeof data !== "object" || data === null || Array.isArray(data))
		throw Errors.badRequest(`'${kind}' needs an object with taskId and attempt`);
	const message = data as Record<string, unknown>;
	if (message.terminalId !== undefined && message.terminalId !== terminalId)
		throw Errors.forbidden(`The token is for terminal '${terminalId}', not '${String(message.terminalId)}'`);
	// Checked by the dispatcher: the types here are what the message claims.
	const base = { terminalId, taskId: message.taskId as string, attempt: message.attempt as number };
	if (kind === "ack") return { kind, ...base };
	const reply: TerminalReply = { kind, ...base, status: message.status as ResultStatus };
	if (message.output !== undefined) reply.output = message.output;
	if (message.error !== undefined) reply.error = message.error as string;
	if (message.exitCode !== undefined) reply.exitCode = message.exitCode as number;
	return reply;
}

/** A batch's validation error about its only reply, worded as about that reply: `attempt`, not `replies[0].attempt`. */
function alone(error: SocketErrorPayload): SocketErrorPayload {
	const unprefix = (text: string) => text.replaceAll("replies[0].", "");
	const data = Array.isArray(error.data)
		? (error.data as Record<string, unknown>[]).map(item => ({
				...item,
				...(typeof item.field === "string" ? { field: unprefix(item.field) } : {}),
				...(typeof item.message === "string" ? { message: unprefix(item.message) } : {})
			}))
		: error.data;
	return { ...error, message: unprefix(error.message), data };
}

/** Who owns a terminal among the dispatcher replicas: the batches of replies go to it. */
const owners = new OwnerCache();

function statusFromView(view: TaskQueryView, terminalId: string | null): TaskStatusEvent {
	return {
		taskId: view.taskId,
		status: view.status,
		attempt: view.attempt,
		terminalId,
		at: view.updatedAt,
		data: view.data,
		error: view.error,
		exitCode: view.exitCode
	};
}

/** A task's change to whoever follows it here, over socket.io and raw WebSocket. */
function relayStatus(gateway: GatewayThis, event: TaskStatusEvent): void {
	const room = `task:${event.taskId}`;
	// Most tasks have no follower: skip socket.io's encoding of a packet for an empty room.
	if (gateway.clientNs.adapter.rooms.has(room)) gateway.clientNs.to(room).emit("status", event);
	const followers = gateway.wsFollowers.get(event.taskId);
	if (followers) {
		const message = JSON.stringify({ type: "status", ...event });
		for (const ws of followers) ws.send(message);
	}
}

const GatewayService: ServiceSchema<GatewaySettings, GatewayMethods, GatewayVars> = {
	name: "gateway",
	// A connection needs auth and terminals to be let in and the dispatcher to be served: until the
	// node has found them, it neither listens nor is ready (in a cluster they may be on nodes not yet seen).
	dependencies: ["auth", "terminals", "dispatcher"],
	settings: {
		port: 3001,
		heartbeatTimeout: 60_000,
		heartbeatCheckInterval: 5000,
		activityFlushInterval: 5000,
		maxMessageBytes: 1024 * 1024,
		replyBatchSize: 500
	},
	actions: {
		/** Sends an event to a terminal connected to this node; TERMINAL_NOT_CONNECTED otherwise. */
		push: {
			visibility: "public",
			params: {
				terminalId: "string",
				sessionId: { type: "string", optional: true },
				event: { type: "enum", values: ["task", "cancel", "reconnect"] },
				data: "object"
			},
			handler(this: GatewayThis, ctx: Context<{ terminalId: string; sessionId?: string } & OutboundEvent>) {
				const session = this.sessions.get(ctx.params.terminalId);
				if (!session || (ctx.params.sessionId && session.id !== ctx.params.sessionId))
					throw Errors.terminalNotConnected(ctx.params.terminalId);
				session.send({ event: ctx.params.event, data: ctx.params.data } as OutboundEvent);
				return { ok: true };
			}
		},

		/**
		 * Many pushes in one call (the dispatcher's deliveries of one turn to this node): one boolean
		 * per push, same order — true when sent to the live session (the named one, when given),
		 * false when the terminal is not connected here.
		 */
		pushMany: {
			visibility: "public",
			params: {
				pushes: {
					type: "array",
					items: {
						type: "object",
						props: {
							terminalId: "string",
							sessionId: { type: "string", optional: true },
							event: { type: "enum", values: ["task", "cancel", "reconnect"] },
							data: "object"
						}
					}
				}
			},
			handler(this: GatewayThis, ctx: Context<PushManyParams>): boolean[] {
				return ctx.params.pushes.map(push => {
					const session = this.sessions.get(push.terminalId);
					if (!session || (push.sessionId && session.id !== push.sessionId)) return false;
					session.send(push);
					return true;
				});
			}
		},

		/**
		 * The presence of the sessions of this node: caches rebuild from it when they start. All of
		 * them, or a page (`offset`, `limit`): a few thousand sessions already pass the transporter's
		 * largest message (NATS: 1 MiB by default).
		 */
		sessions: {
			visibility: "public",
			params: {
				offset: { type: "number", integer: true, min: 0, optional: true },
				limit: { type: "number", integer: true, min: 1, optional: true }
			},
			handler(this: GatewayThis, ctx: Context<{ offset?: number; limit?: number }>): (Presence & { transport: string })[] {
				const offset = ctx.params.offset ?? 0;
				const sessions = [...this.sessions.values()].slice(
					offset,
					ctx.params.limit ? offset + ctx.params.limit : undefined
				);
				return sessions.map(s => ({
					terminalId: s.terminalId,
					nodeID: this.broker.nodeID,
					sessionId: s.id,
					concurrency: s.concurrency,
					labels: s.labels,
					...(s.capabilities ? { capabilities: s.capabilities } : {}),
					connectedAt: s.connectedAt,
					lastActiveAt: s.lastActiveAt,
					transport: s.transport
				}));
			}
		},

		/** For readiness probes: the gateway is listening. */
		health: {
			visibility: "public",
			handler(this: GatewayThis) {
				if (!this.server?.listening) throw Errors.terminalNotConnected("*");
				return { ok: true, sessions: this.sessions.size };
			}
		}
	},
	events: {
		"task.status"(this: GatewayThis, ctx: Context<TaskStatusEvent>) {
			relayStatus(this, ctx.params);
		},
		"task.statuses"(this: GatewayThis, ctx: Context<TaskStatusesEvent>) {
			for (const event of ctx.params.events) relayStatus(this, event);
		},
		"task.progress"(this: GatewayThis, ctx: Context<TaskProgressEvent>) {
			this.clientNs.to(`task:${ctx.params.taskId}`).emit("progress", ctx.params);
			const followers = this.wsFollowers.get(ctx.params.taskId);
			if (followers) {
				const message = JSON.stringify({ type: "progress", ...ctx.params });
				for (const ws of followers) ws.send(message);
			}
		},
		/** Disabled or key rotated: its session ends with an error saying why. */
		"terminal.revoked"(this: GatewayThis, ctx: Context<TerminalRevokedEvent>) {
			const session = this.sessions.get(ctx.params.terminalId);
			if (!session) return;
			const error =
				ctx.params.reason === "disabled"
					? Errors.terminalDisabled(ctx.params.terminalId)
					: Errors.invalidToken("the terminal's key was rotated");
			session.send({ event: "error", data: toErrorPayload(error) });
			session.close(ctx.params.reason);
		}
	},
	methods: {
		async verify(this: GatewayThis, token: unknown): Promise<Principal> {
			if (typeof token !== "string" || token === "") throw Errors.unauthorized("A token is required");
			return this.broker.call<Principal, { token: string }>("auth.verify", { token });
		},

		/** Authenticates a terminal connection and settles its concurrency. */
		async openSession(this: GatewayThis, token: unknown, claimedId: string | null, advertised: unknown) {
			const principal = await this.verify(token);
			if (principal.kind !== "terminal") throw Errors.forbidden("A terminal token is required here, not a user token");
			if (claimedId !== null && claimedId !== principal.terminalId)
				throw Errors.forbidden(`The token is for terminal '${principal.terminalId}', not '${claimedId}'`);
			const terminal = await this.broker.call<TerminalRecord | null, { id: string }>("terminals.resolve", {
				id: principal.terminalId
			});
			if (!terminal) throw Errors.terminalNotFound(principal.terminalId);
			if (!terminal.enabled) throw Errors.terminalDisabled(terminal.id);
			let concurrency = terminal.concurrency;
			if (advertised !== undefined && advertised !== null) {
				const n = Number(advertised);
				if (!Number.isInteger(n) || n < 1 || n > 10_000)
					throw Errors.validation("'concurrency' must be an integer from 1 to 10000", [
						{ field: "concurrency", message: "'concurrency' must be an integer from 1 to 10000" }
					]);
				concurrency = n;
			}
			return { terminal, concurrency };
		},

		/** A new session replaces any older one of the same terminal on this node. */
		async register(this: GatewayThis, session: TerminalSession) {
			const older = this.sessions.get(session.terminalId);
			this.sessions.set(session.terminalId, session);
			const presence: Presence = {
				terminalId: session.terminalId,
				nodeID: this.broker.nodeID,
				sessionId: session.id,
				concurrency: session.concurrency,
				labels: session.labels,
				...(session.capabilities ? { capabilities: session.capabilities } : {}),
				connectedAt: session.connectedAt,
				lastActiveAt: session.lastActiveAt
			};
			this.logger.info(`Terminal '${session.terminalId}' connected (${session.transport})`);
			await this.broker.broadcast("terminal.connected", presence);
			// Closed once the newer session is the terminal's presence: what the older one held
			// unacknowledged then goes back to the queue, and so to the newer one (see unregister).
			if (older) older.close("replaced by a newer connection");
			await this.broker.call("dispatcher.connected", presence).catch(err => {
				this.logger.warn(`Queue of '${session.terminalId}' not drained on connect: ${(err as Error).message}`);
			});
		},

		async unregister(this: GatewayThis, session: TerminalSession) {
			const current = this.sessions.get(session.terminalId);
			if (current !== session) {
				// Replaced by a newer session here: the terminal stays online, but the tasks pushed on
				// this connection and never acknowledged are returned, else they wait for their ackTimeout.
				if (current)
					await this.broker
						.call("dispatcher.disconnected", { terminalId: session.terminalId, sessionId: session.id })
						.catch(err =>
							this.logger.warn(`Tasks of '${session.terminalId}' not returned: ${(err as Error).message}`)
						);
				return;
			}
			this.sessions.delete(session.terminalId);
			this.logger.info(`Terminal '${session.terminalId}' disconnected`);
			await this.broker.broadcast("terminal.disconnected", {
				terminalId: session.terminalId,
				nodeID: this.broker.nodeID,
				sessionId: session.id,
				lastActiveAt: session.lastActiveAt
			});
			await this.broker
				.call("dispatcher.disconnected", { terminalId: session.terminalId, sessionId: session.id })
				.catch(err => this.logger.warn(`Tasks of '${session.terminalId}' not returned: ${(err as Error).message}`));
		},

		/**
		 * One inbound message from a terminal, whatever the transport: its answer, or the error to
		 * tell the terminal. Acks and results go to the dispatcher in batches; the rest one by one.
		 */
		inbound(this: GatewayThis, session: TerminalSession, type: string, data: unknown) {
			session.touch();
			// Nothing to wait for: a heartbeat needs no place in the session's order.
			if (type === "heartbeat") return HEARTBEAT_ANSWER;
			if (type !== "ack" && type !== "result") return session.inOrder(() => this.handle(session, type, data));
			return session
				.inBatch(() => this.replies.add(toReply(session.terminalId, type, data)))
				.then(answer => {
					if ("error" in answer) throw fromErrorPayload(answer.error);
					return { ok: true, ...answer.ok };
				});
		},

		/** A message that goes to the dispatcher on its own (progress), or is refused here. */
		async handle(this: GatewayThis, session: TerminalSession, type: string, data: unknown) {
			if (!INBOUND.has(type))
				throw Errors.badRequest(`Unknown message type '${type}': expected heartbeat, ack, progress or result`);
			if (typeof data !== "object" || data === null || Array.isArray(data))
				throw Errors.badRequest(`'${type}' needs an object with taskId and attempt`);
			const { type: _drop, ...params } = data as Record<string, unknown>;
			const meta = { principal: { kind: "terminal", terminalId: session.terminalId } satisfies Principal };
			const reply = await this.broker.call<Record<string, unknown>, Record<string, unknown>>(`dispatcher.${type}`, params, {
				meta
			});
			return { ok: true, ...reply };
		},

		/**
		 * Sends replies to the dispatcher node that owns their terminal (the one whose queue and
		 * deadlines they touch; the dispatchers choose it the same way), one call per node. A call
		 * that fails (owner gone, timeout) is made once more to any dispatcher; if that fails too,
		 * each of its replies is answered with the error. A batch refused as invalid (one terminal's
		 * malformed reply) is sent again one reply at a time, so that only that one is refused.
		 */
		async sendReplies(this: GatewayThis, replies: TerminalReply[]): Promise<ReplyAnswer[]> {
			const nodes = nodesRunning(this.broker, "dispatcher");
			const groups = new Map<string | null, number[]>();
			for (let i = 0; i < replies.length; i++) {
				const owner = owners.owner(replies[i].terminalId, nodes);
				const group = groups.get(owner);
				if (group) group.push(i);
				else groups.set(owner, [i]);
			}
			const call = (part: TerminalReply[], nodeID: string | null) =>
				this.broker.call<ReplyAnswer[], RepliesParams>("dispatcher.replies", { replies: part }, nodeID ? { nodeID } : {});
			const send = async (part: TerminalReply[], owner: string | null): Promise<ReplyAnswer[]> => {
				let failure: unknown;
				for (const nodeID of owner === null ? [null] : [owner, null]) {
					try {
						return await call(part, nodeID);
					} catch (err) {
						failure = err;
						if ((err as { type?: unknown }).type === ErrorTypes.VALIDATION) break;
					}
				}
				if ((failure as { type?: unknown }).type !== ErrorTypes.VALIDATION) {
					const error = toErrorPayload(failure);
					return part.map(() => ({ error }));
				}
				if (part.length === 1) return [{ error: alone(toErrorPayload(failure)) }];
				// One by one, each terminal's in order.
				const answers: ReplyAnswer[] = new Array<ReplyAnswer>(part.length);
				const chains = new Map<string, Promise<void>>();
				part.forEach((reply, k) => {
					const next = (chains.get(reply.terminalId) ?? Promise.resolve()).then(async () => {
						answers[k] = (await send([reply], owner))[0];
					});
					chains.set(reply.terminalId, next);
				});
				await Promise.all(chains.values());
				return answers;
			};
			const answers: ReplyAnswer[] = new Array<ReplyAnswer>(replies.length);
			await Promise.all(
				[...groups].map(async ([owner, indexes]) => {
					const got = await send(
						indexes.map(i => replies[i]),
						owner
					);
					for (let k = 0; k < indexes.length; k++) answers[indexes[k]] = got[k];
				})
			);
			return answers;
		},

		async currentStatus(this: GatewayThis, taskId: string, principal: Principal) {
			const view = await this.broker.call<TaskQueryView, { taskId: string }>(
				"dispatcher.query",
				{ taskId },
				{ meta: { principal } }
			);
			return statusFromView(view, null);
		},

		setupSocketIo(this: GatewayThis) {
			this.io = new IoServer(this.server, {
				path: "/socket.io/",
				serveClient: false,
				// Leave other upgrade paths (/ws/…) to their own handler.
				destroyUpgrade: false,
				maxHttpBufferSize: this.settings.maxMessageBytes,
				cors: { origin: true, credentials: true }
			});
			this.io
				.of("/")
				.use((_socket, next) =>
					next(Object.assign(new Error("Use namespace /terminal or /client"), { data: { type: "BAD_REQUEST" } }))
				);

			this.terminalNs = this.io.of("/terminal");
			this.terminalNs.use((socket, next) => {
				const auth = (socket.handshake.auth ?? {}) as { token?: unknown; concurrency?: unknown; capabilities?: unknown };
				const token = auth.token ?? socket.handshake.query.token;
				this.openSession(token, null, auth.concurrency ?? socket.handshake.query.concurrency)
					.then(({ terminal, concurrency }) => {
						socket.data.session = new SocketIoSession(socket, {
							terminalId: terminal.id,
							concurrency,
							labels: terminal.labels,
							capabilities: parseCapabilities(auth.capabilities ?? socket.handshake.query.capabilities)
						});
						next();
					})
					.catch(err => {
						const payload = toErrorPayload(err);
						next(Object.assign(new Error(payload.message), { data: payload }));
					});
			});
			this.terminalNs.on("connection", socket => {
				const session = socket.data.session as SocketIoSession;
				// The handshake has been read: the connection's first HTTP request (its headers, its
				// parser's state) would otherwise stay in memory as long as the connection, KiBs each.
				(socket.conn as { request: IncomingMessage | null }).request = null;
				// One listener for every event rather than one per type: less memory per connection.
				socket.onAny((event: string, ...args: unknown[]) => {
					if (!INBOUND.has(event)) {
						session.touch();
						return void socket.emit("error", toErrorPayload(Errors.badRequest(`Unknown event '${event}'`), event));
					}
					const reply = typeof args[args.length - 1] === "function" ? (args.pop() as SocketReply) : undefined;
					this.inbound(session, event, args[0]).then(
						result => reply?.(result as Parameters<SocketReply>[0]),
						err => {
							const error = toErrorPayload(err, event);
							socket.emit("error", error);
							reply?.({ ok: false, error });
						}
					);
				});
				socket.on("disconnect", () => void this.unregister(session));
				void this.register(session);
			});

			this.clientNs = this.io.of("/client");
			this.clientNs.use((socket, next) => {
				const token = (socket.handshake.auth as { token?: unknown })?.token ?? socket.handshake.query.token;
				this.verify(token)
					.then(principal => {
						if (principal.kind !== "user") throw Errors.forbidden("A user token is required to follow tasks");
						socket.data.principal = principal;
						next();
					})
					.catch(err => {
						const payload = toErrorPayload(err);
						next(Object.assign(new Error(payload.message), { data: payload }));
					});
			});
			this.clientNs.on("connection", (socket: ClientSocket) => {
				socket.on("subscribe", (msg, reply) => {
					const taskId = (msg as { taskId?: unknown } | undefined)?.taskId;
					const fail = (err: unknown) => {
						const error = toErrorPayload(err, "subscribe");
						socket.emit("error", error);
						if (typeof reply === "function") reply({ ok: false, error });
					};
					if (typeof taskId !== "string" || taskId === "")
						return fail(
							Errors.validation("'taskId' is required", [{ field: "taskId", message: "'taskId' is required" }])
						);
					this.currentStatus(taskId, socket.data.principal as Principal).then(status => {
						void socket.join(`task:${taskId}`);
						if (typeof reply === "function") reply({ ok: true, taskId });
						socket.emit("status", status);
					}, fail);
				});
				socket.on("unsubscribe", (msg, reply) => {
					const taskId = (msg as { taskId?: unknown } | undefined)?.taskId;
					if (typeof taskId === "string") void socket.leave(`task:${taskId}`);
					if (typeof reply === "function") reply({ ok: true });
				});
			});
		},

		setupWebSocket(this: GatewayThis) {
			this.wss = new WebSocketServer({ noServer: true, maxPayload: this.settings.maxMessageBytes });
			this.onUpgrade = (req, socket, head) => {
				const path = new URL(req.url ?? "/", "http://x").pathname;
				const terminal = /^\/ws\/terminal\/([^/]+)\/?$/.exec(path);
				const client = /^\/ws\/client\/([^/]+)\/?$/.exec(path);
				if (terminal) void this.upgradeTerminal(req, socket, head, decodeURIComponent(terminal[1]));
				else if (client) void this.upgradeClient(req, socket, head, decodeURIComponent(client[1]));
				else if (!path.startsWith("/socket.io/"))
					refuseUpgrade(socket, Errors.badRequest(`No WebSocket endpoint at '${path}'`));
			};
			this.server.on("upgrade", this.onUpgrade);
		},

		async upgradeTerminal(this: GatewayThis, req: IncomingMessage, socket: Duplex, head: Buffer, terminalId: string) {
			let opened;
			try {
				const url = new URL(req.url ?? "/", "http://x");
				opened = await this.openSession(bearer(req), terminalId, url.searchParams.get("concurrency") ?? undefined);
			} catch (err) {
				return refuseUpgrade(socket, err);
			}
			const { terminal, concurrency } = opened;
			this.wss.handleUpgrade(req, socket, head, ws => {
				const session = new WebSocketSession(ws, {
					terminalId: terminal.id,
					concurrency,
					labels: terminal.labels,
					capabilities: parseCapabilities(
						new URL(req.url ?? "/", "http://x").searchParams.get("capabilities") ?? undefined
					)
				});
				const sendError = (err: unknown, event?: string) => {
					if (ws.readyState === ws.OPEN)
						ws.send(
							JSON.stringify({ ...toErrorPayload(err, event), type: "error", errorType: toErrorPayload(err).type })
						);
				};
				ws.on("message", (raw, isBinary) => {
					session.touch();
					let message: unknown;
					try {
						message = JSON.parse(isBinary ? Buffer.from(raw as Buffer).toString("utf8") : raw.toString());
					} catch {
						return sendError(Errors.badRequest("The message is not valid JSON"));
					}
					const type = (message as { type?: unknown } | null)?.type;
					if (typeof message !== "object" || message === null || typeof type !== "string")
						return sendError(Errors.badRequest("The message has no 'type'"));
					this.inbound(session, type, message).catch(err => sendError(err, type));
				});
				ws.on("close", () => void this.unregister(session));
				ws.on("error", err => this.logger.debug("Terminal socket error", err));
				void this.register(session);
			});
		},

		async upgradeClient(this: GatewayThis, req: IncomingMessage, socket: Duplex, head: Buffer, taskId: string) {
			let status: TaskStatusEvent;
			try {
				const principal = await this.verify(bearer(req));
				if (principal.kind !== "user") throw Errors.forbidden("A user token is required to follow tasks");
				status = await this.currentStatus(taskId, principal);
			} catch (err) {
				return refuseUpgrade(socket, err);
			}
			this.wss.handleUpgrade(req, socket, head, ws => {
				let followers = this.wsFollowers.get(taskId);
				if (!followers) this.wsFollowers.set(taskId, (followers = new Set()));
				followers.add(ws);
				ws.on("close", () => {
					followers.delete(ws);
					if (followers.size === 0 && this.wsFollowers.get(taskId) === followers) this.wsFollowers.delete(taskId);
				});
				ws.on("error", () => undefined);
				ws.send(JSON.stringify({ type: "status", ...status }));
			});
		},

		/** Terminals silent for longer than heartbeatTimeout are dropped, and so go offline. */
		checkHeartbeats(this: GatewayThis) {
			const cutoff = Date.now() - this.settings.heartbeatTimeout;
			for (const session of this.sessions.values()) {
				if (session.lastActiveAt < cutoff) {
					this.logger.info(`Terminal '${session.terminalId}' silent for ${this.settings.heartbeatTimeout} ms: offline`);
					session.close("heartbeat timeout");
					void this.unregister(session);
				}
			}
		},

		/** Activity since the last flush, in events of ACTIVITY_CHUNK terminals at most (one message each). */
		flushActivity(this: GatewayThis) {
			let items: TerminalActiveEvent["items"] = [];
			const flush = () => {
				if (items.length > 0) void this.broker.broadcast("terminal.active", { items }).catch(() => undefined);
				items = [];
			};
			for (const session of this.sessions.values()) {
				if (!session.dirty) continue;
				session.dirty = false;
				items.push({ terminalId: session.terminalId, lastActiveAt: session.lastActiveAt });
				if (items.length >= ACTIVITY_CHUNK) flush();
			}
			flush();
		}
	},
	created(this: GatewayThis) {
		this.sessions = new Map();
		this.wsFollowers = new Map();
		this.replies = new ReplyBatcher(replies => this.sendReplies(replies), this.settings.replyBatchSize);
		this.timers = [];
		this.ownServer = null;
	},
	async started(this: GatewayThis) {
		const api = this.broker.getLocalService("api") as unknown as { server?: HttpServer } | undefined;
		if (api?.server) {
			this.server = api.server;
		} else {
			this.ownServer = this.server = http.createServer((_req, res) => res.writeHead(404).end());
			await new Promise<void>(resolve => this.server.listen(this.settings.port, resolve));
			this.logger.info(`Gateway listening on port ${this.settings.port}`);
		}
		this.setupSocketIo();
		this.setupWebSocket();
		this.timers.push(
			setInterval(() => this.checkHeartbeats(), this.settings.heartbeatCheckInterval),
			setInterval(() => this.flushActivity(), this.settings.activityFlushInterval)
		);
	},
	async stopped(this: GatewayThis) {
		for (const timer of this.timers) clearInterval(timer);
		this.replies.flush();
		// Graceful stop: terminals are told to reconnect (to another gateway, in a cluster).
		for (const session of this.sessions.values()) {
			session.send({ event: "reconnect", data: { reason: "gateway shutting down" } });
			session.close("gateway shutting down");
		}
		this.server.off("upgrade", this.onUpgrade);
		for (const ws of this.wss.clients) ws.terminate();
		this.wss.close();
		// Not io.close(): that would close the HTTP server, which belongs to the api when shared.
		this.io.disconnectSockets(true);
		for (const ns of [this.terminalNs, this.clientNs]) ns.disconnectSockets(true);
		this.io.engine.close();
		if (this.ownServer) {
			this.ownServer.closeAllConnections();
			await new Promise(resolve => this.ownServer!.close(resolve));
		}
	}
};

export default GatewayService;
