/**
 * The benchmark's load, in a worker thread of its own: socket.io terminals that take every task
 * at once (ack, then a small successful result) and the REST submitters. In embedded mode Tern
 * runs on the main thread, so client and server do not share an event loop and their CPU time
 * can be told apart; in cluster mode Tern is other processes and this is the whole load.
 *
 * Every time here is `performance.now()` of this thread.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { io, type Socket } from "socket.io-client";
import type { PhaseReport, PhaseSpec, Totals, WorkerCommand, WorkerReply, WorkerSetup } from "./protocol.ts";
import { TernClient, TernError, type Transport } from "../../client/index.ts";
import { inBatches } from "../../test/support/rest.ts";
import { summarize } from "./stats.ts";

interface TaskPush {
	taskId: string;
	attempt: number;
	payload: unknown;
}
type Reply =
	{ ok: true; status?: string; duplicate?: boolean } | { ok: false; error: { type?: string; name?: string; message?: string } };

const setup = workerData as WorkerSetup;

/**
 * The submitters: the client SDK over node:http's kept-alive connections. fetch (undici) cost the
 * load about half a millisecond of CPU per request, taken from the same two cores Tern runs on.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 128 });
const keptAlive: Transport = ({ method, url, headers, body, timeoutMs }) =>
	new Promise((resolve, reject) => {
		const length = body === undefined ? {} : { "content-length": Buffer.byteLength(body) };
		const req = request(url, { agent, method, headers: { ...headers, ...length }, timeout: timeoutMs }, res => {
			const chunks: Buffer[] = [];
			res.on("data", (chunk: Buffer) => chunks.push(chunk));
			res.on("end", () =>
				resolve({
					status: res.statusCode ?? 0,
					contentType: String(res.headers["content-type"] ?? ""),
					text: Buffer.concat(chunks).toString()
				})
			);
			res.on("error", reject);
		});
		req.on("timeout", () => req.destroy(new Error(`no answer after ${timeoutMs} ms`)));
		req.on("error", reject);
		req.end(body);
	});
const client = new TernClient({ url: setup.url, token: setup.adminToken, transport: keptAlive, timeoutMs: 120_000 });

const sockets: Socket[] = [];
const heartbeats: NodeJS.Timeout[] = [];
const HEARTBEAT_MS = 25_000;

/** What one phase knows of each of its tasks, by sequence number (0 = not yet). */
class Phase {
	readonly spec: PhaseSpec;
	readonly n: number;
	readonly startAt: Float64Array;
	readonly sentAt: Float64Array;
	readonly repliedAt: Float64Array;
	readonly receivedAt: Float64Array;
	readonly ackAt: Float64Array;
	readonly completedAt: Float64Array;
	readonly taskIds: (string | null)[];
	submitted = 0;
	submitErrors = 0;
	submitsSettled = 0;
	completed = 0;
	lastProgress = performance.now();
	private onChange: (() => void) | null = null;

	constructor(spec: PhaseSpec) {
		this.spec = spec;
		this.n = spec.kind === "closed" ? spec.tasks : Math.round(spec.rate * spec.seconds);
		this.startAt = new Float64Array(this.n);
		this.sentAt = new Float64Array(this.n);
		this.repliedAt = new Float64Array(this.n);
		this.receivedAt = new Float64Array(this.n);
		this.ackAt = new Float64Array(this.n);
		this.completedAt = new Float64Array(this.n);
		this.taskIds = new Array(this.n).fill(null);
	}

	private waiters: (() => void)[] = [];

	changed(): void {
		this.lastProgress = performance.now();
		this.onChange?.();
		const waiters = this.waiters;
		this.waiters = [];
		for (const wake of waiters) wake();
	}

	/** Resolves at the next change. */
	next(): Promise<void> {
		return new Promise(resolve => this.waiters.push(resolve));
	}

	get done(): boolean {
		return this.submitsSettled === this.n && this.completed >= this.submitted;
	}

	/** Resolves when every submitted task completed, or nothing moved for `stallMs`. */
	settle(): Promise<boolean> {
		return new Promise(resolve => {
			const timer = setInterval(() => {
				if (performance.now() - this.lastProgress > this.spec.stallMs) finish(true);
			}, 100);
			const finish = (timedOut: boolean) => {
				clearInterval(timer);
				this.onChange = null;
				resolve(timedOut);
			};
			this.onChange = () => {
				if (this.done) finish(false);
			};
			this.onChange();
		});
	}
}

const phases: Phase[] = [];
const seen = new Set<string>();
const totals: Totals = {
	deliveries: 0,
	duplicates: [],
	redeliveries: 0,
	cancels: 0,
	errors: {},
	errorSamples: [],
	disconnects: 0
};
let closing = false;

function noteError(kind: string, detail: unknown): void {
	totals.errors[kind] = (totals.errors[kind] ?? 0) + 1;
	if (totals.errorSamples.length < 20)
		totals.errorSamples.push(`${kind}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
}

/** A refused submit by the API's status and type; one that never got an answer as an exception. */
function noteSubmitError(err: unknown): void {
	if (err instanceof TernError && err.status > 0) noteError(`submit:${err.status}`, { type: err.type, message: err.message });
	else noteError("submit:exception", (err as Error).message);
}

function errorKind(reply: Reply): string {
	return reply.ok ? "ok" : (reply.error?.type ?? reply.error?.name ?? "unknown");
}

/** A payload of exactly `bytes` bytes of JSON carrying the phase and sequence number. */
function payloadFor(phase: number, seq: number, bytes: number): { p: number; s: number; pad: string } {
	const bare = JSON.stringify({ p: phase, s: seq, pad: "" }).length;
	return { p: phase, s: seq, pad: "x".repeat(Math.max(0, bytes - bare)) };
}

// ---------------------------------------------------------------- terminals

function onTask(socket: Socket, terminalId: string, task: TaskPush): void {
	const now = performance.now();
	totals.deliveries++;
	const key = `${task.taskId}:${task.attempt}`;
	if (seen.has(key)) {
		// At-least-once: a terminal drops a repeat of an attempt it already has.
		totals.duplicates.push({ taskId: task.taskId, attempt: task.attempt, terminalId });
		return;
	}
	seen.add(key);
	if (task.attempt > 1) totals.redeliveries++;
	const { p, s } = (task.payload ?? {}) as { p?: number; s?: number };
	const phase = typeof p === "number" ? phases[p] : undefined;
	if (!phase || typeof s !== "number" || s < 0 || s >= phase.n) {
		noteError("foreign-task", key);
		return;
	}
	if (phase.receivedAt[s] === 0) phase.receivedAt[s] = now;
	const ref = { taskId: task.taskId, attempt: task.attempt };
	const sendResult = () => {
		socket.emit("result", { ...ref, status: "success", output: { ok: true } }, (reply: Reply) => {
			if (!reply.ok) return noteError(`result:${errorKind(reply)}`, { ...ref, error: reply.error });
			if (reply.status !== "COMPLETED") return noteError(`result:status-${reply.status}`, ref);
			if (phase.completedAt[s] === 0) {
				phase.completedAt[s] = performance.now();
				phase.completed++;
				phase.changed();
			}
		});
	};
	phase.ackAt[s] = performance.now();
	socket.emit("ack", ref, (reply: Reply) => {
		if (!reply.ok) {
			noteError(`ack:${errorKind(reply)}`, { ...ref, error: reply.error });
			return;
		}
		if (!setup.pipeline) sendResult();
	});
	if (setup.pipeline) sendResult();
}

async function connectAll(): Promise<void> {
	await inBatches(setup.terminals, 25, async ({ id, token }, i) => {
		const socket = io(`${setup.gatewayUrls[i % setup.gatewayUrls.length]}/terminal`, {
			auth: { token, concurrency: setup.concurrency },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		socket.on("task", (task: TaskPush) => onTask(socket, id, task));
		socket.on("cancel", (msg: unknown) => {
			totals.cancels++;
			noteError("cancel-event", msg);
		});
		socket.on("error", (err: unknown) => noteError("error-event", err));
		await new Promise<void>((resolve, reject) => {
			socket.once("connect", () => resolve());
			socket.once("connect_error", err => reject(new Error(`terminal ${id}: ${err.message}`)));
		});
		socket.on("disconnect", reason => {
			if (closing) return;
			totals.disconnects++;
			noteError("disconnect", `${id}: ${reason}`);
		});
		sockets.push(socket);
		// The server takes a terminal silent for 60 s for gone: a phase that stalls must not lose them.
		heartbeats.push(setInterval(() => socket.emit("heartbeat"), HEARTBEAT_MS));
	});
}

// ---------------------------------------------------------------- submitters

async function submit(phase: Phase, seq: number, startAt: number): Promise<void> {
	const spec = phase.spec;
	phase.startAt[seq] = startAt;
	phase.sentAt[seq] = performance.now();
	const terminalId = setup.terminals[seq % setup.terminals.length].id;
	try {
		const { taskId } = await client.submit({
			terminalId,
			type: spec.type,
			payload: payloadFor(spec.phase, seq, spec.payloadBytes)
		});
		phase.repliedAt[seq] = performance.now();
		phase.taskIds[seq] = taskId;
		phase.submitted++;
	} catch (err) {
		phase.repliedAt[seq] = performance.now();
		phase.submitErrors++;
		noteSubmitError(err);
	}
	phase.submitsSettled++;
	phase.changed();
}

/** Submits tasks `seqs` in one `POST /api/tasks/batch`. */
async function submitBatch(phase: Phase, seqs: number[]): Promise<void> {
	const spec = phase.spec;
	const now = performance.now();
	for (const seq of seqs) phase.startAt[seq] = phase.sentAt[seq] = now;
	const tasks = seqs.map(seq => ({
		terminalId: setup.terminals[seq % setup.terminals.length].id,
		type: spec.type,
		payload: payloadFor(spec.phase, seq, spec.payloadBytes)
	}));
	try {
		const results = await client.submitBatch(tasks);
		const replied = performance.now();
		seqs.forEach((seq, i) => {
			phase.repliedAt[seq] = replied;
			const result = results[i];
			if (result && "taskId" in result) {
				phase.taskIds[seq] = result.taskId;
				phase.submitted++;
			} else {
				phase.submitErrors++;
				noteError("submit:refused", result);
			}
		});
	} catch (err) {
		for (const seq of seqs) {
			phase.repliedAt[seq] = performance.now();
			phase.submitErrors++;
		}
		noteSubmitError(err);
	}
	phase.submitsSettled += seqs.length;
	phase.changed();
}

/**
 * `concurrency` submitters, each sending its next request when its last is answered and, with a
 * window, only while fewer than `window` tasks are submitted and not yet completed.
 */
async function runClosed(phase: Phase, spec: Extract<PhaseSpec, { kind: "closed" }>): Promise<void> {
	let next = 0;
	const batch = Math.max(1, spec.batch);
	let reserved = 0;
	const outstanding = () => reserved - phase.completed - phase.submitErrors;
	const submitter = async () => {
		while (next < phase.n) {
			if (spec.window > 0 && outstanding() + batch > spec.window) {
				await phase.next();
				continue;
			}
			const seqs: number[] = [];
			while (seqs.length < batch && next < phase.n) seqs.push(next++);
			reserved += seqs.length;
			if (batch === 1) await submit(phase, seqs[0], performance.now());
			else await submitBatch(phase, seqs);
		}
	};
	await Promise.all(Array.from({ length: Math.max(1, Math.min(spec.concurrency, Math.ceil(phase.n / batch))) }, submitter));
}

/** Sends at fixed intended times whatever the replies do: latency counts from the intended time. */
async function runOpen(phase: Phase, rate: number): Promise<void> {
	const interval = 1000 / rate;
	const start = performance.now() + 5;
	const inflight: Promise<void>[] = [];
	let seq = 0;
	while (seq < phase.n) {
		const due = start + seq * interval;
		const wait = due - performance.now();
		if (wait > 1) await new Promise(resolve => setTimeout(resolve, wait - 0.5));
		else if (wait > 0) await new Promise(resolve => setImmediate(resolve));
		// Send everything that is due now, catching up if the loop fell behind.
		const now = performance.now();
		while (seq < phase.n && start + seq * interval <= now) {
			inflight.push(submit(phase, seq, start + seq * interval));
			seq++;
		}
	}
	await Promise.all(inflight);
}

function collect(values: (i: number) => number | null, n: number): number[] {
	const out: number[] = [];
	for (let i = 0; i < n; i++) {
		const v = values(i);
		if (v !== null) out.push(v);
	}
	return out;
}

async function runPhase(spec: PhaseSpec): Promise<PhaseReport> {
	const phase = new Phase(spec);
	phases[spec.phase] = phase;
	const cpu0 = process.threadCpuUsage();
	const t0 = performance.now();
	const settled = phase.settle();
	if (spec.kind === "closed") await runClosed(phase, spec);
	else await runOpen(phase, spec.rate);
	const timedOut = await settled;
	const cpu = process.threadCpuUsage(cpu0);
	const n = phase.n;
	const ok = (i: number) => phase.taskIds[i] !== null;
	let first = Infinity;
	let last = t0;
	for (let i = 0; i < n; i++) {
		if (phase.sentAt[i] > 0) first = Math.min(first, phase.sentAt[i]);
		last = Math.max(last, phase.completedAt[i]);
	}
	if (first === Infinity) first = t0;
	const toReceive = (i: number) => (phase.receivedAt[i] > 0 ? phase.receivedAt[i] - phase.startAt[i] : null);
	const missingSample: PhaseReport["missingSample"] = [];
	let missing = 0;
	for (let i = 0; i < n; i++) {
		if (ok(i) && phase.completedAt[i] === 0) {
			missing++;
			if (missingSample.length < 10)
				missingSample.push({
					seq: i,
					taskId: phase.taskIds[i],
					received: phase.receivedAt[i] > 0,
					acked: phase.ackAt[i] > 0
				});
		}
	}
	let lastReply = first;
	for (let i = 0; i < n; i++) lastReply = Math.max(lastReply, phase.repliedAt[i]);
	return {
		kind: spec.kind,
		type: spec.type,
		intended: n,
		submitted: phase.submitted,
		submitErrors: phase.submitErrors,
		completed: phase.completed,
		missing,
		elapsedMs: last - first,
		submitElapsedMs: lastReply - first,
		timedOut,
		toReceive: summarize(collect(toReceive, n)),
		toCompleted: summarize(collect(i => (phase.completedAt[i] > 0 ? phase.completedAt[i] - phase.startAt[i] : null), n)),
		ackToCompleted: summarize(collect(i => (phase.completedAt[i] > 0 ? phase.completedAt[i] - phase.ackAt[i] : null), n)),
		submitRtt: summarize(collect(i => (phase.repliedAt[i] > 0 ? phase.repliedAt[i] - phase.sentAt[i] : null), n)),
		sendLag:
			spec.kind === "open"
				? summarize(collect(i => (phase.sentAt[i] > 0 ? phase.sentAt[i] - phase.startAt[i] : null), n))
				: null,
		receiveTrend: {
			firstQuarterP50: summarize(collect(toReceive, Math.ceil(n / 4))).p50,
			lastQuarterP50: summarize(collect(i => toReceive(n - 1 - i), Math.ceil(n / 4))).p50
		},
		workerCpu: cpu,
		missingSample
	};
}

// ---------------------------------------------------------------- commands

async function handle(message: WorkerCommand): Promise<unknown> {
	switch (message.cmd) {
		case "connect":
			return connectAll();
		case "run":
			return runPhase(message.spec);
		case "totals":
			return totals;
		case "close":
			closing = true;
			for (const timer of heartbeats) clearInterval(timer);
			for (const socket of sockets) socket.close();
			return undefined;
	}
}

parentPort!.on("message", (message: WorkerCommand) => {
	handle(message).then(
		result => parentPort!.postMessage({ id: message.id, ok: true, result } satisfies WorkerReply),
		err =>
			parentPort!.postMessage({
				id: message.id,
				ok: false,
				error: (err as Error).stack ?? String(err)
			} satisfies WorkerReply)
	);
});
