/**
 * The terminal sessions of this process, whatever their transport: who is connected, what they
 * send (each inbound message becomes a dispatcher call made as that terminal), what they are
 * sent, and when a silent one is dropped. The cluster learns of each through `terminal.*` events.
 */
import type { Logger, ServiceBroker } from "moleculer";
import type { GatewayPush, Presence, Principal, TerminalActiveEvent, TerminalRevokedEvent } from "../../lib/contracts.ts";
import { Errors, fromErrorPayload, toErrorPayload } from "../../lib/errors.ts";
import { admitTerminal, type Admitted } from "./admission.ts";
import { INBOUND, refuseOversize, toReply } from "./messages.ts";
import { ReplyBatcher } from "./replies.ts";
import type { ReplyRouter } from "./routing.ts";
import type { DisconnectReason, TerminalSession } from "./sessions.ts";
import type { TerminalMetrics } from "../../lib/metrics/terminals.ts";
import { fields } from "../../lib/log-format.ts";
import { ReconnectGuard, type TerminalLimits } from "./limits.ts";
import { AdmissionGate, type GateLimits } from "./gate.ts";

export interface HubSettings extends TerminalLimits, GateLimits {
	/** Silence after which a terminal is offline, ms. */
	heartbeatTimeout: number;
	/** Acks and results sent to the dispatcher in one call at most. */
	replyBatchSize: number;
	/** Largest result `output` passed on, bytes of JSON. */
	maxResultBytes: number;
}

/** What an inbound message is answered with (socket.io's acknowledgement callback). */
export type InboundAnswer = { ok: true; [key: string]: unknown };

/** Terminals per `terminal.active` event: about 0.3 MiB of JSON, well under NATS's largest message. */
const ACTIVITY_CHUNK = 5000;

const HEARTBEAT_ANSWER: Promise<InboundAnswer> = Promise.resolve({ ok: true as const });

export class TerminalHub {
	readonly sessions = new Map<string, TerminalSession>();
	private readonly broker: ServiceBroker;
	readonly logger: Logger;
	private readonly settings: HubSettings;
	private readonly replies: ReplyBatcher;
	private readonly metrics: TerminalMetrics;
	private readonly reconnects: ReconnectGuard;
	/** Handshakes at once and per second: a crowd is told when to come back. */
	readonly gate: AdmissionGate;
	private readonly now: () => number;

	constructor(broker: ServiceBroker, logger: Logger, settings: HubSettings, router: ReplyRouter, metrics: TerminalMetrics) {
		this.broker = broker;
		this.metrics = metrics;
		this.logger = logger;
		this.settings = settings;
		this.replies = new ReplyBatcher(replies => router.send(replies), settings.replyBatchSize);
		this.reconnects = new ReconnectGuard(settings);
		this.now = settings.clock ?? Date.now;
		this.gate = new AdmissionGate(settings, { now: this.now });
		this.gate.onRefused = reason => metrics.refused(reason);
	}

	/**
	 * Lets a terminal in, or says why not; `claimedId` is the id its connection claims, if any.
	 * The gate comes first (a crowd is refused before any work); only an authenticated
	 * connection counts against its id's reconnect limit: a stranger with a bad token cannot use
	 * up a terminal's connections.
	 */
	async admit(token: unknown, claimedId: string | null, advertised: unknown): Promise<Admitted> {
		const release = this.gate.enter();
		try {
			const admitted = await admitTerminal(this.broker, token, claimedId, advertised);
			this.reconnects.admit(admitted.terminal.id);
			return admitted;
		} finally {
			release();
		}
	}

	presence(session: TerminalSession): Presence & { transport: string } {
		return {
			terminalId: session.terminalId,
			nodeID: this.broker.nodeID,
			sessionId: session.id,
			concurrency: session.concurrency,
			labels: session.labels,
			...(session.capabilities ? { capabilities: session.capabilities } : {}),
			transport: session.transport,
			connectedAt: session.connectedAt,
			lastActiveAt: session.lastActiveAt
		};
	}

	/** A new session replaces any older one of the same terminal on this node. */
	async register(session: TerminalSession): Promise<void> {
		const older = this.sessions.get(session.terminalId);
		this.sessions.set(session.terminalId, session);
		this.metrics.connected(session.transport, session.terminalId);
		if (older) this.metrics.superseded(older.transport);
		const presence = this.presence(session);
		this.logger.info(
			fields({ terminalId: session.terminalId, sessionId: session.id }),
			`Terminal '${session.terminalId}' connected (${session.transport})`
		);
		await this.announce("terminal.connected", presence);
		// Closed once the newer session is the terminal's presence: what the older one held
		// unacknowledged then goes back to the queue, and so to the newer one (see unregister).
		if (older) older.end("replaced", "replaced by a newer connection");
		await this.broker.call("dispatcher.connected", presence).catch(err => {
			this.logger.warn(
				fields({ terminalId: session.terminalId }),
				`Queue of '${session.terminalId}' not drained on connect: ${(err as Error).message}`
			);
		});
	}

	/** A session ended; `transportReason`: why, as its transport tells it (Tern's own reason comes first). */
	async unregister(session: TerminalSession, transportReason: DisconnectReason = "normal"): Promise<void> {
		const current = this.sessions.get(session.terminalId);
		if (!session.ended) {
			session.ended = true;
			const reason = session.endReason ?? transportReason;
			this.metrics.disconnected(session.transport, reason, session.terminalId, current === session);
		}
		if (current !== session) {
			// Replaced by a newer session here: the terminal stays online, but the tasks pushed on
			// this connection and never acknowledged are returned, else they wait for their ackTimeout.
			if (current) await this.returnDelivered(session);
			return;
		}
		this.sessions.delete(session.terminalId);
		this.logger.info(
			fields({ terminalId: session.terminalId, sessionId: session.id }),
			`Terminal '${session.terminalId}' disconnected`
		);
		await this.announce("terminal.disconnected", {
			terminalId: session.terminalId,
			nodeID: this.broker.nodeID,
			sessionId: session.id,
			lastActiveAt: session.lastActiveAt
		});
		await this.returnDelivered(session);
	}

	/** Sessions come and go from socket callbacks: a failed announcement is logged, never thrown there. */
	private announce(event: string, payload: unknown): Promise<unknown> {
		return this.broker
			.broadcast(event, payload)
			.catch(err => this.logger.warn(`'${event}' not announced: ${(err as Error).message}`));
	}

	private returnDelivered(session: TerminalSession): Promise<unknown> {
		return this.broker
			.call("dispatcher.disconnected", { terminalId: session.terminalId, sessionId: session.id })
			.catch(err =>
				this.logger.warn(
					fields({ terminalId: session.terminalId }),
					`Tasks of '${session.terminalId}' not returned: ${(err as Error).message}`
				)
			);
	}

	/**
	 * One inbound message from a terminal, its depth already checked by the transport: its answer,
	 * or the error to tell the terminal. Acks and results go to the dispatcher in batches; the rest
	 * one by one.
	 */
	inbound(session: TerminalSession, type: string, data: unknown): Promise<InboundAnswer> {
		session.touch();
		// Past the limit a message is refused before anything handles it.
		const verdict = session.meter.take(this.settings.messageRateLimit, this.now());
		if (!verdict.ok) {
			if (verdict.abuse) this.abuse(session, verdict.error);
			return Promise.reject(verdict.error);
		}
		// Nothing to wait for: a heartbeat needs no place in the session's order.
		if (type === "heartbeat") return HEARTBEAT_ANSWER;
		if (type !== "ack" && type !== "result") return session.inOrder(() => this.handle(session, type, data));
		const refused: { error?: Error } = {};
		return session
			.inBatch(() => {
				const reply = toReply(session.terminalId, type, data);
				const oversize = refuseOversize(reply, this.settings.maxResultBytes);
				// The attempt is failed in its place; the terminal learns why its result was not taken.
				refused.error = oversize?.error;
				return this.replies.add(oversize?.failed ?? reply);
			})
			.then(answer => {
				if ("error" in answer) throw fromErrorPayload(answer.error);
				if (refused.error) throw refused.error;
				return { ok: true, ...answer.ok };
			});
	}

	/** A message that goes to the dispatcher on its own (progress), or is refused here. */
	private async handle(session: TerminalSession, type: string, data: unknown): Promise<InboundAnswer> {
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
	}

	/** Sends to the live session (the named one, when given): false when it is not connected here. */
	push(push: GatewayPush): boolean {
		const session = this.sessions.get(push.terminalId);
		if (!session || (push.sessionId && session.id !== push.sessionId)) return false;
		session.send(push);
		return true;
	}

	/**
	 * Disabled, key rotated or deleted: its session ends with an error saying why. Drained: it
	 * finished its work as asked, and is let go without an error.
	 */
	revoke(event: TerminalRevokedEvent): void {
		const session = this.sessions.get(event.terminalId);
		if (!session) return;
		if (event.reason !== "drained") {
			const error =
				event.reason === "disabled"
					? Errors.terminalDisabled(event.terminalId)
					: event.reason === "deleted"
						? Errors.invalidToken("the terminal was deleted")
						: Errors.invalidToken("the terminal's key was rotated");
			session.send({ event: "error", data: toErrorPayload(error) });
		}
		session.end(event.reason === "drained" ? "drained" : "kicked", event.reason);
	}

	/** Twice its message limit in one second: the terminal is told why, and disconnected. */
	private abuse(session: TerminalSession, error: Error): void {
		if (session.endReason) return;
		this.logger.warn(
			fields({ terminalId: session.terminalId, sessionId: session.id }),
			`Terminal '${session.terminalId}' disconnected: twice its limit of ${this.settings.messageRateLimit} messages/s`
		);
		const payload = toErrorPayload(error);
		session.send({
			event: "error",
			data: { ...payload, message: `Disconnected: too many messages (limit ${this.settings.messageRateLimit}/s)` }
		});
		session.end("rate_limited", "rate limited: too many messages");
	}

	/** Terminals silent for longer than heartbeatTimeout are dropped, and so go offline. */
	checkHeartbeats(now = Date.now()): void {
		const cutoff = now - this.settings.heartbeatTimeout;
		for (const session of this.sessions.values()) {
			if (session.lastActiveAt < cutoff) {
				this.logger.info(
					fields({ terminalId: session.terminalId }),
					`Terminal '${session.terminalId}' silent for ${this.settings.heartbeatTimeout} ms: offline`
				);
				session.end("heartbeat_timeout", "heartbeat timeout");
				void this.unregister(session);
			}
		}
	}

	/** Activity since the last flush, in events of ACTIVITY_CHUNK terminals at most (one message each). */
	flushActivity(): void {
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

	/** Graceful stop: what is batched goes out, and terminals are told to reconnect (to another gateway, in a cluster). */
	shutdown(reason: string, delayFor: () => number = () => 0): void {
		this.releaseAll(reason, delayFor, "shutdown");
	}

	/** Every session is told to reconnect after `delayFor()` ms (another gateway, in a cluster) and let go. */
	releaseAll(reason: string, delayFor: () => number, why: "shutdown" | "partition" = "partition"): void {
		this.replies.flush();
		for (const session of this.sessions.values()) {
			session.send({ event: "reconnect", data: { reason, delayMs: delayFor() } });
			session.end(why, reason);
		}
	}
}
