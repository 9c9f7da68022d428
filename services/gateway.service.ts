/**
 * gateway: the live connections of this process. Terminals connect on socket.io `/terminal` or
 * raw WebSocket `/ws/terminal/:id`, two adapters over one session model (gateway/hub.ts);
 * clients follow tasks on `/client` or `/ws/client/:taskId` (gateway/followers.ts). Every
 * inbound terminal message becomes a dispatcher call made as that terminal; the dispatcher
 * reaches a terminal through `gateway.push` on the node that holds it.
 */
import http, { type IncomingMessage, type Server as HttpServer } from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Server as IoServer } from "socket.io";
import type { WebSocketServer } from "ws";
import type {
	AlertChangedEvent,
	GatewayPush,
	Presence,
	PushManyParams,
	TaskProgressEvent,
	TaskStatusesEvent,
	TerminalConnectedEvent,
	TerminalDisconnectedEvent,
	TerminalRevokedEvent
} from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { setSecureHeaders } from "../lib/http/headers.ts";
import { RuntimeSettingsMixin } from "../mixins/runtime-settings.mixin.ts";
import { FollowChannel } from "./gateway/followers.ts";
import { TerminalHub } from "./gateway/hub.ts";
import { TerminalMetrics } from "../lib/metrics/terminals.ts";
import { ReplyRouter } from "./gateway/routing.ts";
import type { TerminalSession } from "./gateway/sessions.ts";
import { attachTerminals, createIoServer, type TerminalNamespace } from "./gateway/socketio.ts";
import { createWebSocketServer, refuseUpgrade, upgradeTarget, upgradeTerminal } from "./gateway/websocket.ts";
import { PartitionGuard } from "./gateway/partition.ts";
import { transportWatch } from "../lib/transport-watch.ts";

const MiB = 1024 * 1024;

export interface GatewaySettings extends ServiceSettingSchema {
	/** Port of the gateway's own HTTP server, used only when no `api` runs in this process. @defaultValue 3001 */
	port: number;
	/** Silence after which a terminal is offline, ms. @defaultValue 60000 */
	heartbeatTimeout: number;
	/** How often silent sessions are looked for, ms. @defaultValue 5000 */
	heartbeatCheckInterval: number;
	/** How often terminal activity is reported to the cluster, ms. @defaultValue 5000 */
	activityFlushInterval: number;
	/**
	 * Largest result `output` (bytes of JSON) passed on to the dispatcher; a larger one is refused
	 * with RESULT_TOO_LARGE and its attempt failed. Keep it at the dispatcher's own limit. @defaultValue 1 MiB
	 */
	maxResultBytes: number;
	/**
	 * Largest inbound message (socket.io's `maxHttpBufferSize`, ws's `maxPayload`), bytes; null:
	 * maxResultBytes + 1 MiB. Above the result limit, so that an oversize result is read and
	 * refused with an error rather than dropping the connection. @defaultValue null
	 */
	maxMessageBytes: number | null;
	/** Acks and results sent to the dispatcher in one call at most (more wait for the next). @defaultValue 500 */
	replyBatchSize: number;
	/** Adds a `terminalId` label to the connect and disconnect series: one series per terminal. @defaultValue false */
	metricsTerminalLabels: boolean;
	/**
	 * HTTPS for the gateway's own server (PEM chain and key); null: plain HTTP. On the api's
	 * server the api's setting decides. @defaultValue null
	 */
	tls: { cert: string; key: string } | null;
	/** Origins allowed by socket.io's CORS (exact); empty: none. @defaultValue [] */
	corsOrigins: string[];
	/** Messages per terminal session and second (socket.io and raw WebSocket); 0: no limit. @defaultValue 200 */
	messageRateLimit: number;
	/**
	 * Connections one terminal id may open per `reconnectWindow` (each replaces the one before);
	 * past it the handshake is refused with RATE_LIMITED and a retry hint. 0: no limit. @defaultValue 10
	 */
	reconnectLimit: number;
	/** @defaultValue 10000 ms */
	reconnectWindow: number;
	/** Terminal handshakes verified at once; more are refused with GATEWAY_BUSY and when to retry. 0: no limit. @defaultValue 64 */
	admitConcurrency: number;
	/** Terminal handshakes let in per second; past it, GATEWAY_BUSY with a retry spread over the next seconds. 0: no limit. @defaultValue 1000 */
	admitRate: number;
	/** Once cut off from NATS, sessions are kept this long before they are told to reconnect elsewhere, ms. @defaultValue 5000 */
	partitionGrace: number;
	/** Terminals told to reconnect (cut off, or stopping) wait a random delay up to this long, ms. @defaultValue 5000 */
	reconnectSpread: number;
}

const pushProps = {
	terminalId: "string",
	sessionId: { type: "string", optional: true },
	event: { type: "enum", values: ["task", "cancel", "reconnect"] },
	data: "object"
};

interface GatewayVars {
	hub: TerminalHub;
	/** The hub's live sessions by terminal id, the same map (a test simulating a crash clears it). */
	sessions: Map<string, TerminalSession>;
	followers: FollowChannel;
	/** The HTTP server the channels listen on: the api's, or the gateway's own (`ownServer`). */
	server: HttpServer | null;
	ownServer: HttpServer | null;
	io: IoServer | null;
	terminalNs: TerminalNamespace | null;
	wss: WebSocketServer | null;
	timers: NodeJS.Timeout[];
	onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
	/** The server the channels listen on is HTTPS (so the sockets are WSS). */
	secure: boolean;
	partition: PartitionGuard;
	unwatch: () => void;
}
interface GatewayMethods {
	listen(): Promise<HttpServer>;
	upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}
type GatewayThis = Service<GatewaySettings> & GatewayVars & GatewayMethods;

const GatewayService: ServiceSchema<GatewaySettings, GatewayMethods, GatewayVars> = {
	name: "gateway",
	mixins: [
		RuntimeSettingsMixin<GatewayThis>({
			maxResultBytes(value) {
				this.settings.maxResultBytes = value;
			}
		})
	],
	// A connection needs auth and terminals to be let in and the dispatcher to be served: until the
	// node has found them, it neither listens nor is ready (in a cluster they may be on nodes not yet seen).
	dependencies: ["auth", "terminals", "dispatcher"],
	settings: {
		// The TLS key never leaves this node in the service registry.
		$secureSettings: ["tls"],
		port: 3001,
		heartbeatTimeout: 60_000,
		heartbeatCheckInterval: 5000,
		activityFlushInterval: 5000,
		maxResultBytes: MiB,
		maxMessageBytes: null,
		replyBatchSize: 500,
		metricsTerminalLabels: false,
		tls: null,
		corsOrigins: [],
		messageRateLimit: 200,
		reconnectLimit: 10,
		reconnectWindow: 10_000,
		admitConcurrency: 64,
		admitRate: 1000,
		partitionGrace: 5000,
		reconnectSpread: 5000
	},
	actions: {
		/** Sends an event to a terminal connected to this node; TERMINAL_NOT_CONNECTED otherwise. */
		push: {
			visibility: "public",
			params: pushProps,
			handler(this: GatewayThis, ctx: Context<GatewayPush>) {
				if (!this.hub.push(ctx.params)) throw Errors.terminalNotConnected(ctx.params.terminalId);
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
			params: { pushes: { type: "array", items: { type: "object", props: pushProps } } },
			handler(this: GatewayThis, ctx: Context<PushManyParams>): boolean[] {
				return ctx.params.pushes.map(push => this.hub.push(push));
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
				const end = ctx.params.limit ? offset + ctx.params.limit : undefined;
				return [...this.hub.sessions.values()].slice(offset, end).map(s => this.hub.presence(s));
			}
		},

		/** For readiness probes: the gateway is listening. */
		health: {
			visibility: "public",
			handler(this: GatewayThis) {
				if (!this.server?.listening) throw Errors.terminalNotConnected("*");
				return { ok: true, sessions: this.hub.sessions.size };
			}
		}
	},
	events: {
		"task.statuses"(this: GatewayThis, ctx: Context<TaskStatusesEvent>) {
			for (const event of ctx.params.events) this.followers.status(event);
			this.followers.watchers.statuses(ctx.params.events);
		},
		/** To the console's watchers: presence and alerts as they change. */
		"terminal.connected"(this: GatewayThis, ctx: Context<TerminalConnectedEvent>) {
			this.followers.watchers.terminal({
				terminalId: ctx.params.terminalId,
				status: "online",
				at: new Date().toISOString()
			});
		},
		"terminal.disconnected"(this: GatewayThis, ctx: Context<TerminalDisconnectedEvent>) {
			this.followers.watchers.terminal({
				terminalId: ctx.params.terminalId,
				status: "offline",
				at: new Date().toISOString()
			});
		},
		"alert.changed"(this: GatewayThis, ctx: Context<AlertChangedEvent>) {
			this.followers.watchers.alert(ctx.params);
		},
		"task.progress"(this: GatewayThis, ctx: Context<TaskProgressEvent>) {
			this.followers.progress(ctx.params);
		},
		/** Disabled or key rotated: its session ends with an error saying why. */
		"terminal.revoked"(this: GatewayThis, ctx: Context<TerminalRevokedEvent>) {
			this.hub.revoke(ctx.params);
		}
	},
	methods: {
		/** The api's HTTP(S) server when it runs in this process, else the gateway's own, listening. */
		async listen(this: GatewayThis) {
			const api = this.broker.getLocalService("api") as unknown as { server?: HttpServer; isHTTPS?: boolean } | undefined;
			if (api?.server) {
				this.secure = Boolean(api.isHTTPS);
				return api.server;
			}
			const tls = this.settings.tls;
			this.secure = tls !== null;
			const notFound = (req: IncomingMessage, res: http.ServerResponse) => {
				setSecureHeaders(req, res, this.secure);
				res.writeHead(404).end();
			};
			const server = (this.ownServer = tls ? https.createServer(tls, notFound) : http.createServer(notFound));
			await new Promise<void>(resolve => server.listen(this.settings.port, resolve));
			this.logger.info(`Gateway listening on port ${this.settings.port} (${tls ? "HTTPS" : "HTTP"})`);
			return server;
		},

		/** Every raw WebSocket upgrade: to its channel, or refused; socket.io's are socket.io's. */
		upgrade(this: GatewayThis, req: IncomingMessage, socket: Duplex, head: Buffer) {
			const target = upgradeTarget(req.url);
			if (target.channel === "socket.io" || !this.wss) return;
			if (target.channel === null) return refuseUpgrade(socket, target.error);
			const upgrading =
				target.channel === "terminal"
					? upgradeTerminal(this.hub, this.wss, req, socket, head, target.id)
					: this.followers.upgrade(this.wss, req, socket, head, target.id);
			// Each refuses what it can answer; anything else ends this socket, never the process.
			upgrading.catch(err => {
				this.logger.warn(`WebSocket upgrade to '${target.channel}' failed: ${(err as Error).message}`);
				socket.destroy();
			});
		}
	},
	created(this: GatewayThis) {
		const router = new ReplyRouter(this.broker);
		const metrics = new TerminalMetrics(this.broker.metrics, { terminalLabels: this.settings.metricsTerminalLabels });
		this.hub = new TerminalHub(this.broker, this.logger, this.settings, router, metrics);
		this.sessions = this.hub.sessions;
		this.followers = new FollowChannel(this.broker);
		this.server = this.ownServer = this.io = this.terminalNs = this.wss = null;
		this.timers = [];
		this.secure = false;
		this.onUpgrade = (req, socket, head) => this.upgrade(req, socket, head);
		this.partition = new PartitionGuard(this.settings, {
			gate: this.hub.gate,
			releaseAll: (reason, delayFor) => this.hub.releaseAll(reason, delayFor),
			log: message => this.logger.warn(message)
		});
		this.unwatch = () => undefined;
	},
	async started(this: GatewayThis) {
		const server = (this.server = await this.listen());
		const limit = this.settings.maxMessageBytes ?? this.settings.maxResultBytes + MiB;
		this.io = createIoServer(server, { maxMessageBytes: limit, corsOrigins: this.settings.corsOrigins, tls: this.secure });
		this.terminalNs = attachTerminals(this.io, this.hub);
		this.followers.attach(this.io);
		this.wss = createWebSocketServer(limit);
		server.on("upgrade", this.onUpgrade);
		this.unwatch = transportWatch(this.broker).subscribe(this.partition);
		this.timers.push(
			setInterval(() => this.hub.checkHeartbeats(), this.settings.heartbeatCheckInterval),
			setInterval(() => this.hub.flushActivity(), this.settings.activityFlushInterval)
		);
	},
	/** Also when it never fully started (a dependency missing, another service failing): what is open closes. */
	async stopped(this: GatewayThis) {
		for (const timer of this.timers) clearInterval(timer);
		this.unwatch();
		this.partition.stop();
		this.hub.shutdown("gateway shutting down", () => this.partition.delay());
		this.server?.off("upgrade", this.onUpgrade);
		for (const ws of this.wss?.clients ?? []) ws.terminate();
		this.wss?.close();
		// Not io.close(): that would close the HTTP server, which belongs to the api when shared.
		this.io?.disconnectSockets(true);
		this.terminalNs?.disconnectSockets(true);
		this.followers.close();
		this.io?.engine.close();
		const own = this.ownServer;
		if (own) {
			own.closeAllConnections();
			await new Promise(resolve => own.close(resolve));
		}
	}
};

export default GatewayService;
