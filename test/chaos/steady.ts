/**
 * The chaos suite's steady terminals besides the socket.io ones (test/helpers/cluster.ts): a raw
 * WebSocket terminal that fails over between the gateways, and a pull terminal that asks the api
 * for work. Both deduplicate by task id, as a careful terminal does: a task pushed or pulled again
 * after it ran is answered with the result it had, not run again, and counted in `pushedAgain`.
 * `runs` counts the attempts of each task the server confirmed the terminal's ack of (the pull
 * terminal): once acked, an attempt is the terminal's, so a second one is a task run twice. The raw
 * terminal gets no answer to its ack; it counts only what it was pushed again.
 */
import WebSocket from "ws";
import { restCall } from "../support/rest.ts";

export interface LoadTerminal {
	readonly id: string;
	/** Tasks whose result the server confirmed as COMPLETED (empty for raw ws, which gets no answer). */
	readonly completed: Set<string>;
	/** Tasks (`taskId`, or `taskId#attempt`) received again after the server confirmed their completion. */
	readonly duplicateCompletions: string[];
	/** Attempts of each task whose ack the server confirmed: more than one is a task run twice. Empty for raw ws. */
	readonly runs: Map<string, number>;
	/** Pushes of a task that had run already, deduplicated. */
	readonly pushedAgain: number;
	close(): void;
}

interface TaskRef {
	taskId: string;
	attempt: number;
}

const pause = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** A raw WebSocket terminal: acks and answers at once, reconnects to the next gateway on a drop. */
export class WsTerminal implements LoadTerminal {
	readonly completed = new Set<string>();
	readonly duplicateCompletions: string[] = [];
	/** Always empty: a raw terminal gets no answer to its ack (see above). */
	readonly runs = new Map<string, number>();
	pushedAgain = 0;
	readonly id: string;
	private readonly token: string;
	private readonly urls: string[];
	/** Tasks received, answered once and deduplicated after. */
	private readonly received = new Set<string>();
	private index = 0;
	private ws: WebSocket | null = null;
	private closed = false;

	constructor(id: string, token: string, urls: string[]) {
		this.id = id;
		this.token = token;
		this.urls = urls.map(u => u.replace(/^http/, "ws"));
	}

	/** Resolves once the first connection is open. */
	start(): Promise<void> {
		return new Promise(resolve => this.connect(resolve));
	}

	private connect(opened?: () => void): void {
		if (this.closed) return;
		const ws = new WebSocket(`${this.urls[this.index]}/ws/terminal/${this.id}`, {
			headers: { authorization: `Bearer ${this.token}` }
		});
		this.ws = ws;
		let advised: number | null = null;
		ws.on("open", () => opened?.());
		ws.on("message", raw => {
			const message = JSON.parse(String(raw)) as { type: string; task?: TaskRef; delayMs?: number };
			if (message.type === "reconnect") advised = message.delayMs ?? 0;
			if (message.type !== "task" || !message.task) return;
			const { taskId, attempt } = message.task;
			if (this.received.has(taskId)) this.pushedAgain++;
			this.received.add(taskId);
			ws.send(JSON.stringify({ type: "ack", taskId, attempt }));
			ws.send(JSON.stringify({ type: "result", taskId, attempt, status: "success", output: { by: this.id } }));
		});
		ws.on("error", () => undefined);
		ws.on("close", () => {
			if (this.closed || ws !== this.ws) return;
			this.index = (this.index + 1) % this.urls.length;
			// As advised by a gateway letting it go, else soon: a refused handshake or a drop.
			setTimeout(() => this.connect(opened), advised ?? 200 + Math.random() * 300).unref();
		});
	}

	close(): void {
		this.closed = true;
		this.ws?.terminate();
	}
}

/** A pull terminal: asks the api for up to 8 tasks, acks each, runs it once, reports. */
export class PullTerminal implements LoadTerminal {
	readonly completed = new Set<string>();
	readonly duplicateCompletions: string[] = [];
	readonly runs = new Map<string, number>();
	pushedAgain = 0;
	readonly id: string;
	private readonly token: string;
	private readonly api: () => string;
	private closed = false;
	private loop: Promise<void> | null = null;

	constructor(id: string, token: string, api: () => string) {
		this.id = id;
		this.token = token;
		this.api = api;
	}

	start(): void {
		this.loop = this.poll();
	}

	private call(method: string, path: string, body?: unknown) {
		return restCall<any>(this.api() + path, method, body, this.token, AbortSignal.timeout(10_000));
	}

	private async poll(): Promise<void> {
		while (!this.closed) {
			let tasks: TaskRef[] = [];
			try {
				const reply = await this.call("GET", `/api/task/pull?limit=8`);
				if (reply.status === 200) tasks = reply.body.tasks;
			} catch {
				// The api is away: asked again below.
			}
			await Promise.all(tasks.map(task => this.handle(task)));
			if (tasks.length === 0) await pause(200);
		}
	}

	private async handle({ taskId, attempt }: TaskRef): Promise<void> {
		if (this.completed.has(taskId)) this.duplicateCompletions.push(taskId);
		const ack = await this.untilAnswered("POST", "/api/task/ack", { taskId, attempt });
		if (ack?.status !== 200) return;
		// Acked: this attempt is the terminal's to run, and no other attempt may be given out.
		const runs = (this.runs.get(taskId) ?? 0) + 1;
		this.runs.set(taskId, runs);
		if (runs > 1) this.pushedAgain++;
		const result = await this.untilAnswered("POST", "/api/task/result", {
			taskId,
			attempt,
			status: "success",
			output: { by: this.id }
		});
		if (result?.status === 202 && result.body.status === "COMPLETED") this.completed.add(taskId);
	}

	/** The call again while the answer is a server error or none: the final answer, or null when closed. */
	private async untilAnswered(method: string, path: string, body: unknown) {
		while (!this.closed) {
			try {
				const reply = await this.call(method, path, body);
				if (reply.status < 500) return reply;
			} catch {
				// No answer: sent again.
			}
			await pause(200);
		}
		return null;
	}

	close(): void {
		this.closed = true;
	}

	async stopped(): Promise<void> {
		await this.loop;
	}
}
