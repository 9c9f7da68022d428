/**
 * One terminal-session model, two transports. The gateway speaks to a `TerminalSession`; the
 * adapters (socketio.ts, websocket.ts) turn that into socket.io events or raw WebSocket JSON
 * messages.
 */
import { randomUUID } from "node:crypto";
import type { ReconnectAdvice, ReplyAnswer, SocketErrorPayload, TaskPush, Labels } from "../../lib/contracts.ts";
import type { Batched } from "./replies.ts";
import { MessageMeter } from "./limits.ts";

/** Where the handling of an inbound message stands: `done` settles (never rejects) once it is answered. */
interface Step {
	open(): boolean;
	done: Promise<unknown>;
}
const SETTLED: Step = { open: () => false, done: Promise.resolve() };

/** What the gateway may send a terminal. */
export type OutboundEvent =
	| { event: "task"; data: TaskPush }
	| { event: "cancel"; data: { taskId: string; attempt?: number; reason?: string } }
	| { event: "reconnect"; data: ReconnectAdvice }
	| { event: "error"; data: SocketErrorPayload };

/**
 * Why a session ended, as the metrics count it: the terminal closed it (`normal`), it fell silent
 * (`heartbeat_timeout`: Tern's check or socket.io's ping), the connection broke (`transport_error`),
 * Tern ended it (`kicked`: disabled, key rotated, deleted; `drained`; `replaced` by a newer
 * session; `rate_limited`: it kept sending past its message limit; `shutdown` of the gateway).
 */
export type DisconnectReason =
	| "normal"
	| "heartbeat_timeout"
	| "transport_error"
	| "kicked"
	| "drained"
	| "replaced"
	| "rate_limited"
	| "shutdown"
	| "partition";

export interface SessionInfo {
	terminalId: string;
	concurrency: number;
	labels: Labels;
	/** Task types (runners) the terminal says it has; undefined: it takes any type. */
	capabilities?: string[];
}

export abstract class TerminalSession {
	readonly id = randomUUID();
	readonly terminalId: string;
	readonly concurrency: number;
	readonly labels: Labels;
	readonly capabilities: string[] | undefined;
	readonly connectedAt = Date.now();
	lastActiveAt = this.connectedAt;
	/** Activity not yet reported to the cluster. */
	dirty = false;
	/** Set when Tern ends the session: why (the transport's own reason is used otherwise). */
	endReason: DisconnectReason | null = null;
	/** Its end has been counted (a session may be unregistered twice: by a check, then by its socket). */
	ended = false;
	/** Its messages in the current second, against the gateway's message limit. */
	readonly meter = new MessageMeter();
	/** Where the handling of the last inbound message stands. */
	private last: Promise<Step> = Promise.resolve(SETTLED);
	abstract readonly transport: "socket.io" | "websocket";

	constructor(info: SessionInfo) {
		this.terminalId = info.terminalId;
		this.concurrency = info.concurrency;
		this.labels = info.labels;
		this.capabilities = info.capabilities;
	}

	touch(now = Date.now()): void {
		this.lastActiveAt = now;
		this.dirty = true;
	}

	/**
	 * Inbound messages are handled one after another, in arrival order: a result sent right
	 * behind its ack must not overtake it. `work` starts once the message before it is answered.
	 */
	inOrder<T>(work: () => Promise<T>): Promise<T> {
		const result = this.last.then(step => step.done).then(work);
		this.last = Promise.resolve({ open: () => false, done: result.catch(() => undefined) });
		return result;
	}

	/**
	 * The same order for a reply that goes to the dispatcher in a batch: it joins the batch the
	 * message before it is in while that one is not yet sent (the dispatcher handles a batch's
	 * replies in order), else it waits for that message's answer first. `join` adds it to a batch.
	 */
	inBatch(join: () => Batched): Promise<ReplyAnswer> {
		const joined = this.last.then(async step => {
			if (!step.open()) await step.done;
			return join();
		});
		this.last = joined.then(
			batched => ({ open: batched.open, done: batched.answer }),
			() => SETTLED
		);
		return joined.then(batched => batched.answer);
	}

	abstract send(message: OutboundEvent): void;
	/** `policy`: the close is a refusal of what it sent (raw WebSocket close code 1008, not 1000). */
	abstract close(reason: string, policy?: boolean): void;

	/** Tern ends the session: `why` is counted, `message` is what the terminal is told. */
	end(why: DisconnectReason, message: string): void {
		this.endReason ??= why;
		this.close(message, why === "rate_limited");
	}
}
