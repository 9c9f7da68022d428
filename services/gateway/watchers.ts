/**
 * Watchers on socket.io `/client` (`watch {}` … `unwatch {}`): dashboards that follow every
 * change rather than one task. Task changes are batched (one `statuses` frame per
 * `interval`, at most `maxBatch` events in it, the rest counted as `dropped`), so a busy
 * cluster costs a watcher a few frames a second; with no watcher nothing is kept or encoded.
 * Terminal presence and alert changes go out as they come, being rare.
 */
import type { Namespace, Socket } from "socket.io";
import type {
	AlertChangedEvent,
	ClientClientToServer,
	ClientServerToClient,
	SocketReply,
	TaskStatusEvent,
	WatchTerminalEvent
} from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { checkDepth, socketError } from "./messages.ts";

type ClientSocket = Socket<ClientClientToServer, ClientServerToClient>;
type ClientNamespace = Namespace<ClientClientToServer, ClientServerToClient>;

export const WATCH_ROOM = "watch";

export interface WatchOptions {
	/** ms between two `statuses` frames. @defaultValue 250 */
	interval: number;
	/** Events in one frame at most. @defaultValue 200 */
	maxBatch: number;
}

/** An empty object, or a socket error naming the unknown field. */
function checkEmpty(msg: unknown, event: string): void {
	checkDepth([msg]);
	if (msg === undefined || msg === null) return;
	if (typeof msg !== "object" || Array.isArray(msg))
		throw Errors.validation(`'${event}' takes an empty object`, [{ field: event, message: "must be an object" }]);
	const [unknown] = Object.keys(msg);
	if (unknown !== undefined)
		throw Errors.validation(`Unknown field '${unknown}'; '${event}' takes none`, [
			{ field: unknown, message: `'${event}' takes no fields` }
		]);
}

export class Watchers {
	private ns: ClientNamespace | null = null;
	private pending: TaskStatusEvent[] = [];
	private dropped = 0;
	private timer: NodeJS.Timeout | null = null;
	private readonly options: WatchOptions;

	constructor(options: Partial<WatchOptions> = {}) {
		this.options = { interval: 250, maxBatch: 200, ...options };
	}

	/** Adds `watch`/`unwatch` to a `/client` socket. */
	attach(ns: ClientNamespace, socket: ClientSocket): void {
		this.ns = ns;
		const handle = (event: "watch" | "unwatch", msg: unknown, reply: SocketReply | undefined) => {
			try {
				checkEmpty(msg, event);
			} catch (err) {
				const error = socketError(err, event);
				socket.emit("error", error);
				if (typeof reply === "function") reply({ ok: false, error });
				return;
			}
			if (event === "watch") void socket.join(WATCH_ROOM);
			else void socket.leave(WATCH_ROOM);
			if (typeof reply === "function") reply({ ok: true });
		};
		socket.on("watch", (msg, reply) => handle("watch", msg, reply));
		socket.on("unwatch", (msg, reply) => handle("unwatch", msg, reply));
	}

	private get watched(): boolean {
		return Boolean(this.ns?.adapter.rooms.get(WATCH_ROOM)?.size);
	}

	statuses(events: TaskStatusEvent[]): void {
		if (!this.watched) return;
		const room = this.options.maxBatch - this.pending.length;
		if (room > 0) this.pending.push(...(events.length > room ? events.slice(0, room) : events));
		if (events.length > room) this.dropped += events.length - Math.max(room, 0);
		this.timer ??= setTimeout(() => this.flush(), this.options.interval);
	}

	private flush(): void {
		this.timer = null;
		const events = this.pending;
		const dropped = this.dropped;
		this.pending = [];
		this.dropped = 0;
		if (events.length > 0 || dropped > 0) this.ns?.to(WATCH_ROOM).emit("statuses", { events, dropped });
	}

	terminal(event: WatchTerminalEvent): void {
		if (this.watched) this.ns?.to(WATCH_ROOM).emit("terminal", event);
	}

	alert(event: AlertChangedEvent): void {
		if (this.watched) this.ns?.to(WATCH_ROOM).emit("alert", event);
	}

	close(): void {
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		this.pending = [];
	}
}
