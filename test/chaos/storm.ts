/**
 * The reconnect storm: many raw-WebSocket terminals on one gateway, the gateway killed and
 * started again, every terminal back at once. Each terminal does what a careful one does: on
 * 503 GATEWAY_BUSY it waits the `retryAfterMs` it was told, on `reconnect` the `delayMs`, on a
 * dropped connection a random second; it acks and completes what it is pushed, once per task id.
 */
import { readFileSync } from "node:fs";
import WebSocket from "ws";

export interface StormStats {
	online: number;
	busyRefusals: number;
	otherRefusals: number;
	/** Pushes of a task this swarm had already completed (deduplicated: not run again). */
	redelivered: number;
	completed: Set<string>;
}

class StormTerminal {
	ws: WebSocket | null = null;
	open = false;
	private closed = false;

	readonly id: string;
	private readonly token: string;
	private readonly url: () => string;
	private readonly stats: StormStats;

	constructor(id: string, token: string, url: () => string, stats: StormStats) {
		this.id = id;
		this.token = token;
		this.url = url;
		this.stats = stats;
	}

	connect(): void {
		if (this.closed) return;
		const ws = new WebSocket(`${this.url()}/ws/terminal/${this.id}`, { headers: { authorization: `Bearer ${this.token}` } });
		this.ws = ws;
		let advised: number | null = null;
		let answered = false;
		ws.on("open", () => {
			this.open = true;
			this.stats.online++;
		});
		ws.on("unexpected-response", (_req, res) => {
			answered = true;
			let text = "";
			res.on("data", chunk => (text += chunk));
			res.on("end", () => {
				let wait = 1000;
				try {
					const body = JSON.parse(text) as { type?: string; data?: { retryAfterMs?: number } };
					if (body.type === "GATEWAY_BUSY") {
						this.stats.busyRefusals++;
						wait = body.data?.retryAfterMs ?? 1000;
					} else this.stats.otherRefusals++;
				} catch {
					this.stats.otherRefusals++;
				}
				this.later(wait);
			});
		});
		ws.on("message", raw => {
			const message = JSON.parse(String(raw)) as {
				type: string;
				task?: { taskId: string; attempt: number };
				delayMs?: number;
			};
			if (message.type === "reconnect") advised = message.delayMs ?? 0;
			if (message.type !== "task" || !message.task) return;
			const { taskId, attempt } = message.task;
			// Pushed again after it was done (its result lost with the connection): it is not run
			// again; the result it had is sent again.
			if (this.stats.completed.has(taskId)) this.stats.redelivered++;
			this.stats.completed.add(taskId);
			ws.send(JSON.stringify({ type: "ack", taskId, attempt }));
			ws.send(JSON.stringify({ type: "result", taskId, attempt, status: "success", output: { by: "storm" } }));
		});
		ws.on("error", () => undefined);
		ws.on("close", () => {
			if (this.open) this.stats.online--;
			this.open = false;
			// A refusal waits as it was told (above); a drop or a connection refused, a random second.
			if (!answered) this.later(advised ?? Math.random() * 1000);
		});
	}

	private later(ms: number): void {
		if (!this.closed) setTimeout(() => this.connect(), ms).unref();
	}

	close(): void {
		this.closed = true;
		this.ws?.terminate();
	}
}

export class Storm {
	readonly stats: StormStats = {
		online: 0,
		busyRefusals: 0,
		otherRefusals: 0,
		redelivered: 0,
		completed: new Set()
	};
	private readonly terminals: StormTerminal[];

	constructor(terminals: { id: string; token: string }[], url: () => string) {
		this.terminals = terminals.map(t => new StormTerminal(t.id, t.token, url, this.stats));
	}

	start(): void {
		for (const t of this.terminals) t.connect();
	}

	get size(): number {
		return this.terminals.length;
	}

	close(): void {
		for (const t of this.terminals) t.close();
	}
}

/** The most memory a process has held (VmHWM), KiB; 0 when it cannot be read. */
export function peakRssKiB(pid: number): number {
	try {
		const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
		return match ? Number(match[1]) : 0;
	} catch {
		return 0;
	}
}
