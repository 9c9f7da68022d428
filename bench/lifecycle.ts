/**
 * End-to-end benchmark of the task lifecycle in embedded mode: one process, SQLite, every
 * service in one broker. Terminals connect over socket.io, tasks go in through REST, each
 * terminal acks and answers at once, and we measure what Tern itself adds.
 *
 *   npm run bench                       # 100 terminals, 5000 tasks, 200 tasks/s for 5 s
 *   npm run bench:quick                 # small and fast, for CI
 *   npm run bench -- --tasks 20000 --concurrency 128 --rate 500 --seconds 10
 *
 * Tern runs on the main thread; the terminals and submitters run in a worker thread
 * (bench/lib/load-worker.ts) so that they do not queue behind the server's event loop and the
 * server's own CPU time can be read apart from the process total.
 *
 * Phases: a short warm-up; a closed loop (N tasks, a fixed number of concurrent submitters,
 * terminalId round-robin) for throughput and latency under load; an open loop at a fixed rate
 * whose latencies start at each task's intended send time (no coordinated omission).
 *
 * Prints tables and writes bench/results/lifecycle-embedded.json. Exits 1 when a task was lost
 * (submitted but not COMPLETED, by the terminals' replies or by GET /api/tasks), a submit
 * failed, or the same (taskId, attempt) was delivered twice.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem, type, release, arch, hostname, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { Worker } from "node:worker_threads";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { loadConfig } from "../moleculer.config.ts";
import { startNode } from "../lib/node.ts";
import type { PhaseReport, PhaseSpec, Totals, WorkerCommand, WorkerReply, WorkerSetup, CpuTime } from "./lib/protocol.ts";
import { Rest, inBatches } from "./lib/rest.ts";
import { round, table, type Summary } from "./lib/stats.ts";

// ---------------------------------------------------------------- parameters

const { values: args } = parseArgs({
	options: {
		quick: { type: "boolean", default: false },
		terminals: { type: "string" },
		"terminal-concurrency": { type: "string" },
		tasks: { type: "string" },
		concurrency: { type: "string" },
		warmup: { type: "string" },
		rate: { type: "string" },
		seconds: { type: "string" },
		payload: { type: "string" },
		"stall-ms": { type: "string" },
		pipeline: { type: "boolean", default: false },
		out: { type: "string" },
		"keep-data": { type: "boolean", default: false },
		help: { type: "boolean", short: "h", default: false }
	},
	strict: true
});

if (args.help) {
	console.log(`Usage: node bench/lifecycle.ts [options]
  --quick                   small sizes for CI (20 terminals, 300 tasks, 100/s for 2 s open loop)
  --terminals N             socket.io terminals (100)
  --terminal-concurrency N  slots each terminal advertises (4)
  --tasks N                 closed-loop tasks (5000)
  --concurrency N           concurrent REST submitters in the closed loop (64)
  --warmup N                warm-up tasks, not measured (500)
  --rate N                  open-loop submits per second (200)
  --seconds N               open-loop duration (5)
  --payload N               payload size in bytes of JSON (100)
  --stall-ms N              give a phase up after this long without progress (60000)
  --pipeline                send result right after ack, without waiting for the ack's reply
  --out FILE                JSON results (bench/results/lifecycle-embedded.json)
  --keep-data               keep the temporary data dir`);
	process.exit(0);
}

function intArg(name: string, value: string | undefined, fallback: number, min = 1): number {
	if (value === undefined) return fallback;
	const n = Number(value);
	if (!Number.isFinite(n) || n < min) {
		console.error(`--${name} must be a number >= ${min}, got '${value}'`);
		process.exit(2);
	}
	return n;
}

const quick = args.quick;
const params = {
	mode: quick ? "quick" : "default",
	terminals: intArg("terminals", args.terminals, quick ? 20 : 100),
	terminalConcurrency: intArg("terminal-concurrency", args["terminal-concurrency"], 4),
	tasks: intArg("tasks", args.tasks, quick ? 300 : 5000),
	concurrency: intArg("concurrency", args.concurrency, quick ? 32 : 64),
	warmup: intArg("warmup", args.warmup, quick ? 50 : 500, 0),
	rate: intArg("rate", args.rate, quick ? 100 : 200),
	seconds: intArg("seconds", args.seconds, quick ? 2 : 5),
	payloadBytes: intArg("payload", args.payload, 100, 0),
	stallMs: intArg("stall-ms", args["stall-ms"], 60_000),
	pipeline: args.pipeline
};
const here = dirname(fileURLToPath(import.meta.url));
const outFile = args.out ?? join(here, "results", "lifecycle-embedded.json");

// ---------------------------------------------------------------- Tern

const t0 = performance.now();
/** Other work on the machine skews every figure: kept with the results. */
const loadBefore = loadavg().map(v => round(v, 2));
const dataDir = mkdtempSync(join(tmpdir(), "tern-bench-"));
const adminPassword = randomBytes(12).toString("base64url");
// An explicit environment: a DB_URI or TRANSPORTER of the caller's shell must not leak in.
const config = loadConfig({ TERN_DATA_DIR: dataDir, PORT: "0", TERN_ADMIN_PASSWORD: adminPassword, LOGLEVEL: "warn" });
const broker = await startNode({ config, settings: { api: { rateLimit: null } } });
const api = broker.getLocalService("api") as unknown as { server: Server };
const url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
const rest = new Rest(url);
const adminToken = await rest.login("admin", adminPassword);
const rssAfterStart = process.memoryUsage.rss();

const terminals = await inBatches(
	Array.from({ length: params.terminals }, (_, i) => `bench-${String(i).padStart(3, "0")}`),
	10,
	async id => ({ id, token: await rest.registerTerminal(id, { concurrency: params.terminalConcurrency }) })
);

// ---------------------------------------------------------------- the load worker

const setup: WorkerSetup = { url, adminToken, terminals, concurrency: params.terminalConcurrency, pipeline: params.pipeline };
const worker = new Worker(new URL("./lib/load-worker.ts", import.meta.url), { workerData: setup });
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;
worker.on("message", (reply: WorkerReply) => {
	const waiter = pending.get(reply.id);
	pending.delete(reply.id);
	if (!waiter) return;
	if (reply.ok) waiter.resolve(reply.result);
	else waiter.reject(new Error(`load worker: ${reply.error}`));
});
worker.on("error", err => {
	for (const waiter of pending.values()) waiter.reject(err);
	pending.clear();
});

type Command = WorkerCommand extends infer C ? (C extends WorkerCommand ? Omit<C, "id"> : never) : never;
function ask<T>(command: Command): Promise<T> {
	const id = nextId++;
	return new Promise<T>((resolve, reject) => {
		pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
		worker.postMessage({ ...command, id });
	});
}

await ask({ cmd: "connect" });
// Connected sockets are online once the gateway has announced them.
for (const deadline = Date.now() + 30_000; ;) {
	const online = await rest.call<unknown[]>("GET", "/api/terminals?status=online");
	if (online.status === 200 && online.body.length === params.terminals) break;
	if (Date.now() > deadline) throw new Error(`only ${online.body?.length} of ${params.terminals} terminals came online`);
	await new Promise(resolve => setTimeout(resolve, 20));
}
const rssAfterConnect = process.memoryUsage.rss();
const setupSeconds = (performance.now() - t0) / 1000;

// ---------------------------------------------------------------- phases

interface PhaseResult {
	name: string;
	report: PhaseReport;
	/** From GET /api/tasks by the phase's task type. */
	server: { total: number; completed: number };
	processCpu: CpuTime;
	serverThreadCpu: CpuTime;
	/** Event-loop utilisation of the server thread, 0–1. */
	serverEventLoopUtilization: number;
	rssPeak: number;
	rssEnd: number;
	heapUsedEnd: number;
}

let rssPeak = 0;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 50);

async function runPhase(name: string, spec: PhaseSpec): Promise<PhaseResult> {
	rssPeak = process.memoryUsage.rss();
	const cpu0 = process.cpuUsage();
	const thread0 = process.threadCpuUsage();
	const elu0 = performance.eventLoopUtilization();
	const report = await ask<PhaseReport>({ cmd: "run", spec });
	const processCpu = process.cpuUsage(cpu0);
	const serverThreadCpu = process.threadCpuUsage(thread0);
	const elu = performance.eventLoopUtilization(elu0).utilization;
	const server = {
		total: await rest.countTasks({ type: spec.type }),
		completed: await rest.countTasks({ type: spec.type, status: "COMPLETED" })
	};
	return {
		name,
		report,
		server,
		processCpu,
		serverThreadCpu,
		serverEventLoopUtilization: round(elu),
		rssPeak,
		rssEnd: process.memoryUsage.rss(),
		heapUsedEnd: process.memoryUsage().heapUsed
	};
}

const common = { payloadBytes: params.payloadBytes, stallMs: params.stallMs };
const results: PhaseResult[] = [];
if (params.warmup > 0)
	results.push(
		await runPhase("warmup", {
			kind: "closed",
			phase: 0,
			type: "bench.warmup",
			tasks: params.warmup,
			concurrency: params.concurrency,
			...common
		})
	);
results.push(
	await runPhase("closed", {
		kind: "closed",
		phase: 1,
		type: "bench.closed",
		tasks: params.tasks,
		concurrency: params.concurrency,
		...common
	})
);
results.push(
	await runPhase("open", { kind: "open", phase: 2, type: "bench.open", rate: params.rate, seconds: params.seconds, ...common })
);

// Late deliveries (a redelivery after the phase) still count as duplicates.
await new Promise(resolve => setTimeout(resolve, 300));
const totals = await ask<Totals>({ cmd: "totals" });
await ask({ cmd: "close" });
await worker.terminate();
clearInterval(sampler);
// Let the gateway finish with the disconnects before the broker stops under them.
for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
	const online = await rest.call<unknown[]>("GET", "/api/terminals?status=online");
	if (online.status !== 200 || online.body.length === 0) break;
	await new Promise(resolve => setTimeout(resolve, 20));
}
await broker.stop();
if (!args["keep-data"]) rmSync(dataDir, { recursive: true, force: true });

// ---------------------------------------------------------------- report

const ms = (v: number) => round(v, 2);
const cpuMsPerTask = (cpu: CpuTime, tasks: number) => (tasks > 0 ? round((cpu.user + cpu.system) / 1000 / tasks, 3) : 0);
const mib = (bytes: number) => round(bytes / 1024 / 1024, 1);

const figures = results.map(r => {
	const { report } = r;
	const lost = report.intended - r.server.completed;
	return {
		phase: r.name,
		kind: report.kind,
		tasks: report.intended,
		submitted: report.submitted,
		submitErrors: report.submitErrors,
		completedByReplies: report.completed,
		completedOnServer: r.server.completed,
		tasksOnServer: r.server.total,
		lost,
		timedOut: report.timedOut,
		elapsedSeconds: round(report.elapsedMs / 1000),
		tasksPerSecond: report.elapsedMs > 0 ? round((report.completed / report.elapsedMs) * 1000, 1) : 0,
		submitsPerSecond: report.submitElapsedMs > 0 ? round((report.submitted / report.submitElapsedMs) * 1000, 1) : 0,
		latencyMs: {
			[report.kind === "open" ? "intendedToReceive" : "submitToReceive"]: report.toReceive,
			[report.kind === "open" ? "intendedToCompleted" : "submitToCompleted"]: report.toCompleted,
			ackToCompleted: report.ackToCompleted,
			submitRtt: report.submitRtt,
			...(report.sendLag ? { sendLag: report.sendLag } : {}),
			receiveTrend: report.receiveTrend
		},
		cpu: {
			processMsPerTask: cpuMsPerTask(r.processCpu, report.completed),
			serverThreadMsPerTask: cpuMsPerTask(r.serverThreadCpu, report.completed),
			loadWorkerMsPerTask: cpuMsPerTask(report.workerCpu, report.completed),
			processUs: r.processCpu,
			serverThreadUs: r.serverThreadCpu,
			loadWorkerUs: report.workerCpu,
			serverEventLoopUtilization: r.serverEventLoopUtilization
		},
		memory: { rssPeakMiB: mib(r.rssPeak), rssEndMiB: mib(r.rssEnd), serverHeapUsedEndMiB: mib(r.heapUsedEnd) },
		missingSample: report.missingSample
	};
});

const measured = figures.filter(f => f.phase !== "warmup");
const failures: string[] = [];
for (const f of figures) {
	if (f.submitErrors > 0) failures.push(`${f.phase}: ${f.submitErrors} submit(s) failed`);
	if (f.lost > 0 || f.completedByReplies < f.tasks)
		failures.push(
			`${f.phase}: ${f.tasks} submitted, ${f.completedOnServer} COMPLETED on the server, ${f.completedByReplies} by the terminals' replies`
		);
	if (f.tasksOnServer !== f.submitted)
		failures.push(`${f.phase}: ${f.submitted} submits accepted but ${f.tasksOnServer} tasks on the server`);
}
if (totals.duplicates.length > 0) failures.push(`${totals.duplicates.length} duplicate delivery(ies) of one (taskId, attempt)`);

const machine = {
	cpuModel: cpus()[0]?.model ?? "unknown",
	cpus: cpus().length,
	totalMemoryMiB: mib(totalmem()),
	node: process.version,
	os: `${type()} ${release()} ${arch()}`,
	hostname: hostname(),
	loadAverageBefore: loadBefore,
	loadAverageAfter: loadavg().map(v => round(v, 2))
};

const lines: string[] = [];
lines.push("");
lines.push(`Tern lifecycle benchmark — embedded mode (one process, SQLite), ${params.mode}`);
lines.push(
	`${machine.cpus} × ${machine.cpuModel}, ${round(machine.totalMemoryMiB / 1024, 1)} GiB, node ${machine.node}, ${machine.os}`
);
lines.push(
	`${params.terminals} socket.io terminals × ${params.terminalConcurrency} slots; closed loop ${params.tasks} tasks, ${params.concurrency} submitters; ` +
		`open loop ${params.rate}/s × ${params.seconds} s; payload ${params.payloadBytes} B; warm-up ${params.warmup}` +
		(params.pipeline ? "; result pipelined after ack" : "; result after the ack's reply")
);
if (loadBefore[0] > 0.5)
	lines.push(
		`note: load average was ${loadBefore.join(" ")} before the run (${machine.loadAverageAfter.join(" ")} after): other work on this machine skews the figures`
	);
lines.push(
	`setup ${round(setupSeconds, 2)} s; RSS after start ${mib(rssAfterStart)} MiB, after connecting terminals ${mib(rssAfterConnect)} MiB`
);
lines.push("");
lines.push(
	table(
		[
			"phase",
			"tasks",
			"completed",
			"lost",
			"seconds",
			"tasks/s",
			"submits/s",
			"cpu ms/task",
			"server ms/task",
			"server ELU",
			"RSS peak MiB"
		],
		measured.map(f => [
			f.phase,
			f.tasks,
			f.completedOnServer,
			f.lost,
			f.elapsedSeconds,
			f.tasksPerSecond,
			f.submitsPerSecond,
			f.cpu.processMsPerTask,
			f.cpu.serverThreadMsPerTask,
			f.cpu.serverEventLoopUtilization,
			f.memory.rssPeakMiB
		])
	)
);
lines.push("");
const latencyRow = (label: string, s: Summary | undefined): (string | number)[] =>
	s ? [label, s.count, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean)] : [label, "-", "-", "-", "-", "-", "-"];
const closed = results.find(r => r.name === "closed")!.report;
const open = results.find(r => r.name === "open")!.report;
const closedFigures = figures.find(f => f.phase === "closed")!;
const openFigures = figures.find(f => f.phase === "open")!;
const pick = (s: Summary) => ({ p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max) });
/**
 * Tern fell behind the offered rate when latency grew over the run: a queue built up, and the
 * open loop's latencies are then mostly time spent waiting in it.
 */
const openOverCapacity = open.receiveTrend.lastQuarterP50 > 2 * open.receiveTrend.firstQuarterP50 + 50;
lines.push(
	table(
		["latency (ms)", "n", "p50", "p90", "p99", "max", "mean"],
		[
			latencyRow("closed: submit sent → terminal gets task", closed.toReceive),
			latencyRow("closed: submit REST round trip", closed.submitRtt),
			latencyRow("closed: ack sent → result COMPLETED", closed.ackToCompleted),
			latencyRow("closed: submit sent → COMPLETED", closed.toCompleted),
			latencyRow("open:   intended send → terminal gets task", open.toReceive),
			latencyRow("open:   intended send → COMPLETED", open.toCompleted),
			latencyRow("open:   ack sent → result COMPLETED", open.ackToCompleted),
			latencyRow("open:   send lag behind schedule", open.sendLag ?? undefined)
		]
	)
);
if (openOverCapacity)
	lines.push(
		`note: the open loop at ${params.rate}/s is over capacity: submit→receive p50 grew from ${ms(open.receiveTrend.firstQuarterP50)} ms ` +
			`(first quarter) to ${ms(open.receiveTrend.lastQuarterP50)} ms (last quarter), so its latencies are mostly queueing (try a lower --rate)`
	);
lines.push("");
lines.push(
	`deliveries ${totals.deliveries}, duplicates ${totals.duplicates.length}, redeliveries ${totals.redeliveries}, cancels ${totals.cancels}, ` +
		`disconnects ${totals.disconnects}, errors ${JSON.stringify(totals.errors)}`
);
for (const sample of totals.errorSamples.slice(0, 5)) lines.push(`  ${sample}`);
for (const f of figures)
	for (const m of f.missingSample)
		lines.push(`  missing (${f.phase}) seq ${m.seq} task ${m.taskId} received=${m.received} acked=${m.acked}`);
lines.push(failures.length === 0 ? "OK: every task COMPLETED exactly once" : `FAILED:\n  ${failures.join("\n  ")}`);
console.log(lines.join("\n"));

mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
	outFile,
	JSON.stringify(
		{
			benchmark: "lifecycle",
			mode: "embedded",
			timestamp: new Date().toISOString(),
			machine,
			parameters: params,
			setup: {
				seconds: round(setupSeconds, 3),
				rssAfterStartMiB: mib(rssAfterStart),
				rssAfterConnectMiB: mib(rssAfterConnect)
			},
			figures: {
				throughputTasksPerSecond: closedFigures.tasksPerSecond,
				submitToReceiveMs: pick(closed.toReceive),
				ackToCompletedMs: pick(closed.ackToCompleted),
				submitToCompletedMs: pick(closed.toCompleted),
				openLoop: {
					rate: params.rate,
					achievedTasksPerSecond: openFigures.tasksPerSecond,
					overCapacity: openOverCapacity,
					intendedToReceiveMs: pick(open.toReceive),
					intendedToCompletedMs: pick(open.toCompleted),
					ackToCompletedMs: pick(open.ackToCompleted)
				},
				cpuMsPerTask: closedFigures.cpu.processMsPerTask,
				serverThreadCpuMsPerTask: closedFigures.cpu.serverThreadMsPerTask,
				rssPeakMiB: Math.max(...figures.map(f => f.memory.rssPeakMiB))
			},
			phases: figures,
			integrity: {
				deliveries: totals.deliveries,
				duplicates: totals.duplicates.length,
				duplicateSample: totals.duplicates.slice(0, 10),
				redeliveries: totals.redeliveries,
				cancels: totals.cancels,
				disconnects: totals.disconnects,
				errors: totals.errors,
				errorSamples: totals.errorSamples
			},
			openLoopOverCapacity: openOverCapacity,
			ok: failures.length === 0,
			failures
		},
		null,
		2
	) + "\n"
);
console.log(`results written to ${outFile}`);
process.exit(failures.length === 0 ? 0 : 1);
