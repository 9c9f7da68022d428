/**
 * End-to-end benchmark of the task lifecycle, in embedded mode and in cluster mode, with the
 * same load. Terminals connect over socket.io, tasks go in through REST, each terminal acks
 * and answers at once, and we measure what Tern itself adds.
 *
 *   npm run bench                       # both modes: 100 terminals, 5000 tasks, 200 tasks/s for 5 s
 *   npm run bench:quick                 # small and fast, both modes, for CI
 *   npm run bench -- --mode cluster --tasks 20000 --concurrency 128 --rate 500 --seconds 10
 *
 * Embedded: one process, SQLite, every service in one broker, on this process's main thread.
 * Cluster: six OS processes (`node tern.ts`) on the machine's NATS and a fresh MariaDB database
 * (dropped at the end) in a namespace of their own — api (with auth and terminals), cache, two
 * dispatchers, two gateways — with the terminals spread over both gateways (bench/lib/cluster.ts).
 * In both modes the terminals and submitters run in a worker thread (bench/lib/load-worker.ts),
 * so that they do not queue behind the server's event loop and their CPU time is told apart.
 *
 * CPU per task: embedded, the process (Tern plus the load) and Tern alone (the process less the
 * load worker; SQLite's work is in it); cluster, the Tern processes summed (from /proc/<pid>/stat),
 * MariaDB and NATS when they run on this machine, and the load worker.
 *
 * Phases: a short warm-up; a closed loop (N tasks, a fixed number of concurrent submitters,
 * terminalId round-robin) for throughput and latency under load; an open loop at a fixed rate
 * whose latencies start at each task's intended send time (no coordinated omission).
 *
 * Prints one table of both modes and writes bench/results/lifecycle.json (a quick or one-mode run:
 * bench/results/lifecycle.tmp.json, ignored by git). Exits 1 when a task was lost (submitted but
 * not COMPLETED, by the terminals' replies or by GET /api/tasks), a submit failed, the same
 * (taskId, attempt) was delivered twice, or a cluster node died.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { Worker } from "node:worker_threads";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { loadConfig } from "../moleculer.config.ts";
import { startNode } from "../node.ts";
import type { PhaseReport, PhaseSpec, Totals, WorkerCommand, WorkerReply, WorkerSetup, CpuTime } from "./lib/protocol.ts";
import { Rest, inBatches } from "../test/support/rest.ts";
import { describeMachine, loadAverage } from "./lib/machine.ts";
import { round, table, type Summary } from "./lib/stats.ts";
import { BenchCluster, processCpuUs, processRss, serverPids, type NodeSpec } from "./lib/cluster.ts";

// ---------------------------------------------------------------- parameters

const MODES = ["embedded", "cluster"] as const;
type Mode = (typeof MODES)[number];

const { values: args } = parseArgs({
	options: {
		mode: { type: "string", default: "both" },
		topology: { type: "string", default: "roles" },
		quick: { type: "boolean", default: false },
		terminals: { type: "string" },
		"terminal-concurrency": { type: "string" },
		tasks: { type: "string" },
		concurrency: { type: "string" },
		warmup: { type: "string" },
		rate: { type: "string" },
		rates: { type: "string" },
		reps: { type: "string" },
		batch: { type: "string" },
		window: { type: "string" },
		seconds: { type: "string" },
		payload: { type: "string" },
		"stall-ms": { type: "string" },
		pipeline: { type: "boolean", default: false },
		metrics: { type: "string", default: "on" },
		out: { type: "string" },
		"keep-data": { type: "boolean", default: false },
		help: { type: "boolean", short: "h", default: false }
	},
	strict: true
});

if (args.help) {
	console.log(`Usage: node bench/lifecycle.ts [options]
  --mode M                  embedded, cluster or both (both)
  --topology T              cluster: roles (one role per process, six processes) or full (two processes
                            with every service each) (roles)
  --quick                   small sizes for CI (20 terminals, 300 tasks, 100/s for 2 s open loop)
  --terminals N             socket.io terminals (100)
  --terminal-concurrency N  slots each terminal advertises (4)
  --tasks N                 closed-loop tasks (5000)
  --concurrency N           concurrent REST submitters in the closed loop (64)
  --warmup N                warm-up tasks, not measured (500)
  --batch N                 closed loop: tasks per submit, POST /api/tasks/batch when > 1 (1)
  --window N                closed loop: tasks submitted and not yet completed at most (0: unbounded)
  --reps N                  closed and open loops each run N times in one setup (1)
  --rate N                  open-loop submits per second (200)
  --rates N,M               open loops at each of these rates (overrides --rate)
  --seconds N               open-loop duration (5)
  --payload N               payload size in bytes of JSON (100)
  --stall-ms N              give a phase up after this long without progress (60000)
  --pipeline                send result right after ack, without waiting for the ack's reply
  --metrics on|off          embedded: TERN_METRICS of the node (on); bench/metrics.ts compares both
  --out FILE                JSON results (bench/results/lifecycle.json; with --quick or one mode,
                            bench/results/lifecycle.tmp.json)
  --keep-data               keep embedded mode's temporary data dir
Cluster mode needs NATS (TERN_TEST_NATS, nats://127.0.0.1:4222) and MariaDB or MySQL
(TERN_TEST_MYSQL, mysql://root@127.0.0.1:3306); TERN_BENCH_LOGS=1 echoes the nodes' output.`);
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

if (args.mode !== "both" && !(MODES as readonly string[]).includes(args.mode)) {
	console.error(`--mode must be embedded, cluster or both, got '${args.mode}'`);
	process.exit(2);
}
const modes: Mode[] = args.mode === "both" ? [...MODES] : [args.mode as Mode];
const quick = args.quick;
const params = {
	mode: quick ? "quick" : "default",
	modes,
	terminals: intArg("terminals", args.terminals, quick ? 20 : 100),
	terminalConcurrency: intArg("terminal-concurrency", args["terminal-concurrency"], 4),
	tasks: intArg("tasks", args.tasks, quick ? 300 : 5000),
	concurrency: intArg("concurrency", args.concurrency, quick ? 32 : 64),
	warmup: intArg("warmup", args.warmup, quick ? 50 : 500, 0),
	rate: intArg("rate", args.rate, quick ? 100 : 200),
	rates: (args.rates ?? "")
		.split(",")
		.filter(Boolean)
		.map(r => intArg("rates", r, 0)),
	reps: intArg("reps", args.reps, 1),
	batch: intArg("batch", args.batch, 1),
	window: intArg("window", args.window, 0, 0),
	seconds: intArg("seconds", args.seconds, quick ? 2 : 5),
	payloadBytes: intArg("payload", args.payload, 100, 0),
	stallMs: intArg("stall-ms", args["stall-ms"], 60_000),
	pipeline: args.pipeline
};
const here = dirname(fileURLToPath(import.meta.url));
const outFile = args.out ?? join(here, "results", quick || modes.length < 2 ? "lifecycle.tmp.json" : "lifecycle.json");

/**
 * The cluster's nodes. "roles": one role per process, as the cluster test suite and the k8s
 * manifests run them. "full": two processes with every task service each — the same replicas of
 * each role, with half the hops between processes.
 */
const TOPOLOGIES: Record<string, NodeSpec[]> = {
	roles: [
		{ id: "api", services: ["api", "auth", "terminals"] },
		{ id: "cache", services: ["cache"] },
		{ id: "disp-1", services: ["dispatcher"] },
		{ id: "disp-2", services: ["dispatcher"] },
		{ id: "gw-1", services: ["gateway"] },
		{ id: "gw-2", services: ["gateway"] }
	],
	full: [
		{ id: "node-1", services: ["api", "auth", "terminals", "cache", "dispatcher", "gateway"] },
		{ id: "node-2", services: ["api", "auth", "terminals", "cache", "dispatcher", "gateway"] }
	]
};
if (!(args.topology in TOPOLOGIES)) {
	console.error(`--topology must be roles or full, got '${args.topology}'`);
	process.exit(2);
}
const CLUSTER_NODES = TOPOLOGIES[args.topology];

const ms = (v: number) => round(v, 2);
const mib = (bytes: number) => round(bytes / 1024 / 1024, 1);
const us = (cpu: CpuTime) => cpu.user + cpu.system;
const perTask = (cpuUs: number | null, tasks: number) => (cpuUs === null ? null : tasks > 0 ? round(cpuUs / 1000 / tasks, 3) : 0);
const sleep = (msecs: number) => new Promise(resolve => setTimeout(resolve, msecs));

// ---------------------------------------------------------------- measuring

/** What one phase cost, as far as the mode can tell. CPU times in µs. */
interface PhaseCost {
	/** Tern: embedded, this process less the load worker; cluster, the node processes summed. */
	ternCpuUs: number;
	/** The database server (cluster; null when it is not on this machine or embedded, where SQLite is in Tern). */
	databaseCpuUs: number | null;
	/** The NATS server (cluster; null when not on this machine or embedded). */
	natsCpuUs: number | null;
	/** The load worker thread (terminals and submitters). */
	loadWorkerCpuUs: number;
	/** This whole process: embedded, Tern plus the load; cluster, the load plus this main thread. */
	benchProcessCpuUs: number;
	/** Embedded: the server thread alone, and its event-loop utilisation (0–1). */
	serverThreadCpuUs: number | null;
	serverEventLoopUtilization: number | null;
	/** Resident memory of Tern: embedded, this process; cluster, the node processes summed (peak of the sum). */
	rssPeak: number;
	rssEnd: number;
	/** Cluster: each process's share. */
	processes: { id: string; cpuUs: number | null; busy: number | null; rssPeak: number | null; rssEnd: number | null }[];
	wallMs: number;
}

/** Measures a mode's phases: `begin` before, and the returned function after, with the worker's report. */
interface Meter {
	begin(): (report: PhaseReport) => PhaseCost;
	/** Tern's resident memory now. */
	rss(): number;
	/** The terminals are connected (the cluster notes each process's memory then). */
	connected?(): void;
	stop(): void;
}

function embeddedMeter(): Meter {
	let rssPeak = 0;
	const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 50);
	return {
		begin() {
			rssPeak = process.memoryUsage.rss();
			const wall0 = performance.now();
			const cpu0 = process.cpuUsage();
			const thread0 = process.threadCpuUsage();
			const elu0 = performance.eventLoopUtilization();
			return report => {
				const processCpu = us(process.cpuUsage(cpu0));
				const serverThread = us(process.threadCpuUsage(thread0));
				const elu = performance.eventLoopUtilization(elu0).utilization;
				const rssEnd = process.memoryUsage.rss();
				return {
					ternCpuUs: Math.max(0, processCpu - us(report.workerCpu)),
					databaseCpuUs: null,
					natsCpuUs: null,
					loadWorkerCpuUs: us(report.workerCpu),
					benchProcessCpuUs: processCpu,
					serverThreadCpuUs: serverThread,
					serverEventLoopUtilization: round(elu),
					rssPeak: Math.max(rssPeak, rssEnd),
					rssEnd,
					processes: [],
					wallMs: performance.now() - wall0
				};
			};
		},
		rss: () => process.memoryUsage.rss(),
		stop: () => clearInterval(sampler)
	};
}

interface Watched {
	id: string;
	role: "tern" | "database" | "nats";
	pid: number;
}

/** Per-process figures of the cluster over the whole run, for the process table. */
interface ProcessSummary {
	id: string;
	role: string;
	pids: number[];
	rssStartMiB: number | null;
	rssAfterConnectMiB: number | null;
	rssPeakMiB: number | null;
	rssEndMiB: number | null;
}

function clusterMeter(watched: Watched[]): Meter & { summary: Map<string, ProcessSummary> } {
	const ids = [...new Set(watched.map(w => w.id))];
	const rssOf = (id: string): number | null => {
		let sum: number | null = null;
		for (const w of watched) if (w.id === id) sum = (sum ?? 0) + (processRss(w.pid) ?? 0);
		return sum;
	};
	const ternRss = () => watched.filter(w => w.role === "tern").reduce((sum, w) => sum + (processRss(w.pid) ?? 0), 0);
	const summary = new Map<string, ProcessSummary>();
	for (const id of ids) {
		const rss = rssOf(id);
		summary.set(id, {
			id,
			role: watched.find(w => w.id === id)!.role,
			pids: watched.filter(w => w.id === id).map(w => w.pid),
			rssStartMiB: rss === null ? null : mib(rss),
			rssAfterConnectMiB: null,
			rssPeakMiB: rss === null ? null : mib(rss),
			rssEndMiB: null
		});
	}
	// Per phase: the peak of each process and of Tern's sum.
	let phasePeaks = new Map<string, number>();
	let ternPeak = 0;
	const sample = () => {
		let tern = 0;
		for (const id of ids) {
			const rss = rssOf(id) ?? 0;
			phasePeaks.set(id, Math.max(phasePeaks.get(id) ?? 0, rss));
			const s = summary.get(id)!;
			s.rssPeakMiB = Math.max(s.rssPeakMiB ?? 0, mib(rss));
			if (s.role === "tern") tern += rss;
		}
		ternPeak = Math.max(ternPeak, tern);
	};
	const sampler = setInterval(sample, 100);
	const cpuOf = (id: string): number | null => {
		let sum: number | null = null;
		for (const w of watched) if (w.id === id) sum = (sum ?? 0) + (processCpuUs(w.pid) ?? 0);
		return sum;
	};
	return {
		summary,
		connected() {
			for (const id of ids) summary.get(id)!.rssAfterConnectMiB = mib(rssOf(id) ?? 0);
		},
		begin() {
			phasePeaks = new Map();
			ternPeak = 0;
			sample();
			const wall0 = performance.now();
			const cpu0 = new Map(ids.map(id => [id, cpuOf(id)]));
			const bench0 = process.cpuUsage();
			return report => {
				const wallMs = performance.now() - wall0;
				const benchProcessCpuUs = us(process.cpuUsage(bench0));
				sample();
				const processes = ids.map(id => {
					const before = cpu0.get(id) ?? null;
					const after = cpuOf(id);
					const cpuUs = before === null || after === null ? null : Math.max(0, after - before);
					const rssEnd = rssOf(id);
					return {
						id,
						cpuUs,
						busy: cpuUs === null || wallMs <= 0 ? null : round(cpuUs / 1000 / wallMs, 2),
						rssPeak: phasePeaks.get(id) ?? null,
						rssEnd
					};
				});
				const sumOf = (role: Watched["role"]): number | null => {
					const of = processes.filter(p => watched.find(w => w.id === p.id)!.role === role);
					return of.length === 0 ? null : of.reduce((sum, p) => sum + (p.cpuUs ?? 0), 0);
				};
				return {
					ternCpuUs: sumOf("tern") ?? 0,
					databaseCpuUs: sumOf("database"),
					natsCpuUs: sumOf("nats"),
					loadWorkerCpuUs: us(report.workerCpu),
					benchProcessCpuUs,
					serverThreadCpuUs: null,
					serverEventLoopUtilization: null,
					rssPeak: ternPeak,
					rssEnd: ternRss(),
					processes,
					wallMs
				};
			};
		},
		rss: ternRss,
		stop() {
			clearInterval(sampler);
			for (const id of ids) {
				const rss = rssOf(id);
				summary.get(id)!.rssEndMiB = rss === null ? null : mib(rss);
			}
		}
	};
}

// ---------------------------------------------------------------- the load worker

type Command = WorkerCommand extends infer C ? (C extends WorkerCommand ? Omit<C, "id"> : never) : never;

function startLoadWorker(setup: WorkerSetup): { ask<T>(command: Command): Promise<T>; terminate(): Promise<number> } {
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
	return {
		ask<T>(command: Command): Promise<T> {
			const id = nextId++;
			return new Promise<T>((resolve, reject) => {
				pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
				worker.postMessage({ ...command, id });
			});
		},
		terminate: () => worker.terminate()
	};
}

// ---------------------------------------------------------------- one mode

interface PhaseResult {
	name: string;
	report: PhaseReport;
	/** From GET /api/tasks by the phase's task type. */
	server: { total: number; completed: number };
	cost: PhaseCost;
	/** Embedded: the server thread's heap at the end. */
	heapUsedEnd: number | null;
}

/** A running Tern of either mode, as the load sees it. */
interface Target {
	/** REST. */
	url: string;
	/** Where the terminals connect, spread over in turn. */
	gatewayUrls: string[];
	adminPassword: string;
	meter: Meter;
	/** Problems found after the run (a node died). */
	check(): string[];
}

interface ModeRun {
	mode: Mode;
	title: string;
	setupSeconds: number;
	rssAfterStart: number;
	rssAfterConnect: number;
	/** Cluster: where the terminals ended up, by node. */
	terminalsByNode: Record<string, number> | null;
	results: PhaseResult[];
	totals: Totals;
	problems: string[];
	cluster: {
		namespace: string;
		database: string;
		nodes: { id: string; services: string[]; pid: number }[];
		servers: { database: string; databasePids: number[]; natsPids: number[] };
		processes: ProcessSummary[];
		warnings: Record<string, { count: number; samples: string[] }>;
	} | null;
}

async function drive(
	mode: Mode,
	title: string,
	t0: number,
	target: Target
): Promise<Omit<ModeRun, "cluster" | "title" | "mode">> {
	const rest = new Rest(target.url);
	const adminToken = await rest.login("admin", target.adminPassword);
	const rssAfterStart = target.meter.rss();

	const terminals = await inBatches(
		Array.from({ length: params.terminals }, (_, i) => `bench-${String(i).padStart(3, "0")}`),
		10,
		async id => ({ id, token: await rest.registerTerminal(id, { concurrency: params.terminalConcurrency }) })
	);
	const load = startLoadWorker({
		url: target.url,
		gatewayUrls: target.gatewayUrls,
		adminToken,
		terminals,
		concurrency: params.terminalConcurrency,
		pipeline: params.pipeline
	});
	await load.ask({ cmd: "connect" });
	// Connected sockets are online once the gateway has announced them.
	let online: { id: string; nodeID: string | null }[] = [];
	for (const deadline = Date.now() + 30_000; ;) {
		const reply = await rest.call<{ id: string; nodeID: string | null }[]>("GET", "/api/terminals?status=online");
		if (reply.status === 200) online = reply.body;
		if (online.length === params.terminals) break;
		if (Date.now() > deadline) throw new Error(`${mode}: only ${online.length} of ${params.terminals} terminals came online`);
		await sleep(20);
	}
	const terminalsByNode: Record<string, number> = {};
	for (const t of online) terminalsByNode[t.nodeID ?? "?"] = (terminalsByNode[t.nodeID ?? "?"] ?? 0) + 1;
	const rssAfterConnect = target.meter.rss();
	target.meter.connected?.();
	const setupSeconds = (performance.now() - t0) / 1000;
	console.error(`${title}: ready in ${round(setupSeconds, 1)} s, running the phases`);

	const runPhase = async (name: string, spec: PhaseSpec): Promise<PhaseResult> => {
		const end = target.meter.begin();
		const report = await load.ask<PhaseReport>({ cmd: "run", spec });
		const cost = end(report);
		const server = {
			total: await rest.countTasks({ type: spec.type }),
			completed: await rest.countTasks({ type: spec.type, status: "COMPLETED" })
		};
		return { name, report, server, cost, heapUsedEnd: mode === "embedded" ? process.memoryUsage().heapUsed : null };
	};

	const common = { payloadBytes: params.payloadBytes, stallMs: params.stallMs };
	const closedLoop = { concurrency: params.concurrency, batch: params.batch, window: params.window };
	const results: PhaseResult[] = [];
	let phase = 0;
	if (params.warmup > 0)
		results.push(
			await runPhase("warmup", {
				kind: "closed",
				phase: phase++,
				type: "bench.warmup",
				tasks: params.warmup,
				...closedLoop,
				...common
			})
		);
	// Repetitions are named closed, closed#2, …; open loops open, open#2, … (one rate) or open@R, open@R#2, ….
	const rates = params.rates.length > 0 ? params.rates : [params.rate];
	const named = (base: string, rep: number) => (rep === 1 ? base : `${base}#${rep}`);
	for (let rep = 1; rep <= params.reps; rep++)
		results.push(
			await runPhase(named("closed", rep), {
				kind: "closed",
				phase: phase++,
				type: `bench.closed.${rep}`,
				tasks: params.tasks,
				...closedLoop,
				...common
			})
		);
	for (const rate of rates)
		for (let rep = 1; rep <= params.reps; rep++)
			results.push(
				await runPhase(named(params.rates.length > 0 ? `open@${rate}` : "open", rep), {
					kind: "open",
					phase: phase++,
					type: `bench.open.${rate}.${rep}`,
					rate,
					seconds: params.seconds,
					...common
				})
			);

	// Late deliveries (a redelivery after the phase) still count as duplicates.
	await sleep(300);
	const totals = await load.ask<Totals>({ cmd: "totals" });
	await load.ask({ cmd: "close" });
	await load.terminate();
	// Let the gateways finish with the disconnects before Tern stops under them.
	for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
		const reply = await rest.call<unknown[]>("GET", "/api/terminals?status=online");
		if (reply.status !== 200 || reply.body.length === 0) break;
		await sleep(20);
	}
	return {
		setupSeconds,
		rssAfterStart,
		rssAfterConnect,
		terminalsByNode: mode === "cluster" ? terminalsByNode : null,
		results,
		totals,
		problems: target.check()
	};
}

async function runEmbedded(): Promise<ModeRun> {
	const title = "embedded (one process, SQLite)";
	const t0 = performance.now();
	const dataDir = mkdtempSync(join(tmpdir(), "tern-bench-"));
	const adminPassword = randomBytes(12).toString("base64url");
	// An explicit environment: a DB_URI or TRANSPORTER of the caller's shell must not leak in.
	const config = loadConfig({
		TERN_DATA_DIR: dataDir,
		PORT: "0",
		TERN_ADMIN_PASSWORD: adminPassword,
		LOGLEVEL: "warn",
		// One address and one token far past the production limits (docs/security/transport.md): off here.
		TERN_RATE_LIMIT: "0",
		TERN_TOKEN_RATE_LIMIT: "0",
		TERN_SOCKET_RATE_LIMIT: "0",
		TERN_METRICS: args.metrics
	});
	const broker = await startNode({ config });
	const meter = embeddedMeter();
	try {
		const api = broker.getLocalService("api") as unknown as { server: Server };
		const url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
		const run = await drive("embedded", title, t0, {
			url,
			gatewayUrls: [url],
			adminPassword,
			meter,
			check: () => []
		});
		return { mode: "embedded", title, ...run, cluster: null };
	} finally {
		meter.stop();
		await broker.stop();
		if (!args["keep-data"]) rmSync(dataDir, { recursive: true, force: true });
	}
}

async function runCluster(): Promise<ModeRun> {
	const title = `cluster (${CLUSTER_NODES.length} processes, NATS, MariaDB)`;
	const t0 = performance.now();
	const adminPassword = randomBytes(12).toString("base64url");
	const cluster = await BenchCluster.start({
		name: "tern-bench",
		nodes: CLUSTER_NODES,
		adminPassword,
		env: { TERN_RATE_LIMIT: "0", TERN_TOKEN_RATE_LIMIT: "0", TERN_SOCKET_RATE_LIMIT: "0" }
	});
	const all = [...cluster.nodes.values()];
	const stopping = () => void cluster.close().finally(() => process.exit(130));
	process.once("SIGINT", stopping);
	const servers = serverPids();
	const watched: Watched[] = [
		...all.map(n => ({ id: n.id, role: "tern" as const, pid: n.pid })),
		...servers.database.pids.map(pid => ({ id: servers.database.name, role: "database" as const, pid })),
		...servers.nats.pids.map(pid => ({ id: "nats-server", role: "nats" as const, pid }))
	];
	const meter = clusterMeter(watched);
	const nodes = all.map(n => ({ id: n.id, services: n.services, pid: n.pid }));
	try {
		const api = cluster.running("api")[0];
		const run = await drive("cluster", title, t0, {
			url: api.url,
			gatewayUrls: cluster.running("gateway").map(n => n.url),
			adminPassword,
			meter,
			check: () =>
				all
					.filter(n => !n.running)
					.map(n => `cluster: node ${n.id} died during the run:\n    ${n.output.slice(-15).join("\n    ")}`)
		});
		meter.stop();
		const warnings: Record<string, { count: number; samples: string[] }> = {};
		for (const n of all) if (n.warnings > 0) warnings[n.id] = { count: n.warnings, samples: n.warningSamples };
		return {
			mode: "cluster",
			title,
			...run,
			cluster: {
				namespace: cluster.namespace,
				database: cluster.db.name,
				nodes,
				servers: { database: servers.database.name, databasePids: servers.database.pids, natsPids: servers.nats.pids },
				processes: [...meter.summary.values()],
				warnings
			}
		};
	} finally {
		meter.stop();
		process.off("SIGINT", stopping);
		await cluster.close();
	}
}

// ---------------------------------------------------------------- run

/** Other work on the machine skews every figure: kept with the results. */
const loadBefore = loadAverage();
const runs: ModeRun[] = [];
const crashes: string[] = [];
for (const mode of modes) {
	try {
		runs.push(mode === "embedded" ? await runEmbedded() : await runCluster());
	} catch (err) {
		crashes.push(`${mode}: ${(err as Error).stack ?? String(err)}`);
		console.error(`${mode} mode failed: ${(err as Error).stack ?? String(err)}`);
		if (mode === "cluster")
			console.error(
				"cluster mode needs NATS (TERN_TEST_NATS) and MariaDB or MySQL (TERN_TEST_MYSQL) on this machine; --mode embedded runs without"
			);
	}
}

// ---------------------------------------------------------------- report

function figuresOf(run: ModeRun) {
	return run.results.map(r => {
		const { report, cost } = r;
		const done = report.completed;
		const lost = report.intended - r.server.completed;
		const externalUs = (cost.databaseCpuUs ?? 0) + (cost.natsCpuUs ?? 0) + (run.mode === "cluster" ? cost.ternCpuUs : 0);
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
				/** Everything measured: Tern, its database and NATS, and the load. */
				allMsPerTask: perTask(cost.benchProcessCpuUs + externalUs, done),
				ternMsPerTask: perTask(cost.ternCpuUs, done),
				databaseMsPerTask: perTask(cost.databaseCpuUs, done),
				natsMsPerTask: perTask(cost.natsCpuUs, done),
				loadWorkerMsPerTask: perTask(cost.loadWorkerCpuUs, done),
				serverThreadMsPerTask: perTask(cost.serverThreadCpuUs, done),
				benchProcessMsPerTask: perTask(cost.benchProcessCpuUs, done),
				serverEventLoopUtilization: cost.serverEventLoopUtilization,
				ternUs: cost.ternCpuUs,
				databaseUs: cost.databaseCpuUs,
				natsUs: cost.natsCpuUs,
				loadWorkerUs: cost.loadWorkerCpuUs,
				benchProcessUs: cost.benchProcessCpuUs,
				serverThreadUs: cost.serverThreadCpuUs,
				wallMs: round(cost.wallMs, 1),
				...(cost.processes.length > 0
					? {
							byProcess: Object.fromEntries(
								cost.processes.map(p => [
									p.id,
									{ msPerTask: perTask(p.cpuUs, done), cpuUs: p.cpuUs, busy: p.busy }
								])
							)
						}
					: {})
			},
			memory: {
				ternRssPeakMiB: mib(cost.rssPeak),
				ternRssEndMiB: mib(cost.rssEnd),
				...(r.heapUsedEnd !== null ? { serverHeapUsedEndMiB: mib(r.heapUsedEnd) } : {}),
				...(cost.processes.length > 0
					? {
							byProcess: Object.fromEntries(
								cost.processes.map(p => [
									p.id,
									{
										rssPeakMiB: p.rssPeak === null ? null : mib(p.rssPeak),
										rssEndMiB: p.rssEnd === null ? null : mib(p.rssEnd)
									}
								])
							)
						}
					: {})
			},
			missingSample: report.missingSample
		};
	});
}

type Figures = ReturnType<typeof figuresOf>;

function failuresOf(run: ModeRun, figures: Figures): string[] {
	const failures: string[] = [];
	for (const f of figures) {
		if (f.submitErrors > 0) failures.push(`${run.mode} ${f.phase}: ${f.submitErrors} submit(s) failed`);
		if (f.lost > 0 || f.completedByReplies < f.tasks)
			failures.push(
				`${run.mode} ${f.phase}: ${f.tasks} submitted, ${f.completedOnServer} COMPLETED on the server, ${f.completedByReplies} by the terminals' replies`
			);
		if (f.tasksOnServer !== f.submitted)
			failures.push(`${run.mode} ${f.phase}: ${f.submitted} submits accepted but ${f.tasksOnServer} tasks on the server`);
	}
	if (run.totals.duplicates.length > 0)
		failures.push(`${run.mode}: ${run.totals.duplicates.length} duplicate delivery(ies) of one (taskId, attempt)`);
	failures.push(...run.problems);
	return failures;
}

/**
 * Tern fell behind the offered rate when latency grew over the run: a queue built up, and the
 * open loop's latencies are then mostly time spent waiting in it.
 */
function overCapacity(open: PhaseReport): boolean {
	return open.receiveTrend.lastQuarterP50 > 2 * open.receiveTrend.firstQuarterP50 + 50;
}

const analysed = runs.map(run => {
	const figures = figuresOf(run);
	return { run, figures, failures: failuresOf(run, figures) };
});
const failures = [...crashes.map(c => `${c.split("\n")[0]}`), ...analysed.flatMap(a => a.failures)];

const machine = describeMachine(loadBefore);

const dash = (v: number | null) => (v === null ? "-" : v);
const lines: string[] = [];
lines.push("");
lines.push(`Tern lifecycle benchmark — ${modes.join(" and ")} mode${modes.length > 1 ? "s" : ""}, ${params.mode}`);
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
for (const { run } of analysed) {
	lines.push(
		`${run.title}: setup ${round(run.setupSeconds, 2)} s; ${run.mode === "cluster" ? "Tern RSS (all nodes)" : "RSS"} after start ${mib(run.rssAfterStart)} MiB, ` +
			`after connecting terminals ${mib(run.rssAfterConnect)} MiB` +
			(run.terminalsByNode
				? `; terminals by gateway: ${Object.entries(run.terminalsByNode)
						.map(([node, n]) => `${node} ${n}`)
						.join(", ")}`
				: "")
	);
}
// Tables of the modes that ran to the end.
if (analysed.length > 0) {
	lines.push("");
	lines.push(
		table(
			[
				"mode / phase",
				"tasks",
				"completed",
				"lost",
				"seconds",
				"tasks/s",
				"submits/s",
				"cpu ms/task",
				"Tern ms/task",
				"db ms/task",
				"NATS ms/task",
				"load ms/task",
				"server ELU",
				"Tern RSS peak MiB"
			],
			analysed.flatMap(({ run, figures }) =>
				figures
					.filter(f => f.phase !== "warmup")
					.map(f => [
						`${run.mode} ${f.phase}`,
						f.tasks,
						f.completedOnServer,
						f.lost,
						f.elapsedSeconds,
						f.tasksPerSecond,
						f.submitsPerSecond,
						dash(f.cpu.allMsPerTask),
						dash(f.cpu.ternMsPerTask),
						dash(f.cpu.databaseMsPerTask),
						dash(f.cpu.natsMsPerTask),
						dash(f.cpu.loadWorkerMsPerTask),
						dash(f.cpu.serverEventLoopUtilization),
						f.memory.ternRssPeakMiB
					])
			)
		)
	);
	lines.push(
		"cpu ms/task: CPU time per completed task, of everything measured: Tern, its database and NATS, and the load",
		"Tern ms/task: embedded, the process less the load worker (SQLite's work included); cluster, the six node processes summed",
		"db ms/task: mariadbd (or mysqld); NATS ms/task: nats-server — cluster only, when on this machine, whole-server CPU time",
		"load ms/task: the load worker thread (terminals and submitters); server ELU: event-loop utilisation of the embedded server thread",
		"Tern RSS peak: embedded, the whole process (the load worker included); cluster, the node processes summed"
	);

	const clusterRun = analysed.find(a => a.run.cluster);
	if (clusterRun?.run.cluster) {
		const { run, figures } = clusterRun;
		const closed = figures.find(f => f.phase.startsWith("closed"));
		const open = figures.find(f => f.phase.startsWith("open"));
		const byProcess = (f: (typeof figures)[number] | undefined, id: string) =>
			(f?.cpu.byProcess as Record<string, { msPerTask: number | null; busy: number | null }> | undefined)?.[id];
		lines.push("");
		lines.push(
			table(
				[
					"cluster process",
					"services",
					"closed ms/task",
					"closed busy",
					"open ms/task",
					"open busy",
					"RSS start MiB",
					"RSS connected MiB",
					"RSS peak MiB",
					"RSS end MiB"
				],
				run.cluster!.processes.map(p => {
					const node = run.cluster!.nodes.find(n => n.id === p.id);
					return [
						p.id,
						node ? node.services.join(",") : p.role,
						dash(byProcess(closed, p.id)?.msPerTask ?? null),
						dash(byProcess(closed, p.id)?.busy ?? null),
						dash(byProcess(open, p.id)?.msPerTask ?? null),
						dash(byProcess(open, p.id)?.busy ?? null),
						dash(p.rssStartMiB),
						dash(p.rssAfterConnectMiB),
						dash(p.rssPeakMiB),
						dash(p.rssEndMiB)
					];
				})
			)
		);
		lines.push("busy: CPU time over the phase's wall time (1 = one core all the time)");
	}

	lines.push("");
	const latencyRow = (label: string, s: Summary | undefined): (string | number)[] =>
		s ? [label, s.count, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean)] : [label, "-", "-", "-", "-", "-", "-"];
	lines.push(
		table(
			["latency (ms)", "n", "p50", "p90", "p99", "max", "mean"],
			analysed.flatMap(({ run }) => {
				const closed = run.results.find(r => r.name.startsWith("closed"))!.report;
				const open = run.results.find(r => r.name.startsWith("open"))!.report;
				const m = run.mode.padEnd(8);
				return [
					latencyRow(`${m} closed: submit sent → terminal gets task`, closed.toReceive),
					latencyRow(`${m} closed: submit REST round trip`, closed.submitRtt),
					latencyRow(`${m} closed: ack sent → result COMPLETED`, closed.ackToCompleted),
					latencyRow(`${m} closed: submit sent → COMPLETED`, closed.toCompleted),
					latencyRow(`${m} open:   intended send → terminal gets task`, open.toReceive),
					latencyRow(`${m} open:   intended send → COMPLETED`, open.toCompleted),
					latencyRow(`${m} open:   ack sent → result COMPLETED`, open.ackToCompleted),
					latencyRow(`${m} open:   send lag behind schedule`, open.sendLag ?? undefined)
				];
			})
		)
	);
	for (const { run } of analysed) {
		const open = run.results.find(r => r.name.startsWith("open"))!.report;
		if (overCapacity(open))
			lines.push(
				`note: ${run.mode}: the open loop at ${params.rate}/s is over capacity: submit→receive p50 grew from ${ms(open.receiveTrend.firstQuarterP50)} ms ` +
					`(first quarter) to ${ms(open.receiveTrend.lastQuarterP50)} ms (last quarter), so its latencies are mostly queueing (try a lower --rate)`
			);
	}
}
lines.push("");
for (const { run, figures } of analysed) {
	const t = run.totals;
	lines.push(
		`${run.mode}: deliveries ${t.deliveries}, duplicates ${t.duplicates.length}, redeliveries ${t.redeliveries}, cancels ${t.cancels}, ` +
			`disconnects ${t.disconnects}, errors ${JSON.stringify(t.errors)}`
	);
	for (const sample of t.errorSamples.slice(0, 5)) lines.push(`  ${sample}`);
	for (const f of figures)
		for (const m of f.missingSample)
			lines.push(`  missing (${f.phase}) seq ${m.seq} task ${m.taskId} received=${m.received} acked=${m.acked}`);
	for (const [node, w] of Object.entries(run.cluster?.warnings ?? {})) {
		lines.push(`  node ${node} logged ${w.count} warning/error line(s), e.g.:`);
		for (const sample of w.samples.slice(0, 3)) lines.push(`    ${sample}`);
	}
}
lines.push(failures.length === 0 ? "OK: every task COMPLETED exactly once" : `FAILED:\n  ${failures.join("\n  ")}`);
console.log(lines.join("\n"));

const pick = (s: Summary) => ({ p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), p999: ms(s.p999), max: ms(s.max) });
const modeJson = ({ run, figures, failures }: (typeof analysed)[number]) => {
	const closed = run.results.find(r => r.name.startsWith("closed"))!.report;
	const open = run.results.find(r => r.name.startsWith("open"))!.report;
	const closedFigures = figures.find(f => f.phase.startsWith("closed"))!;
	const openFigures = figures.find(f => f.phase.startsWith("open"))!;
	return {
		mode: run.mode,
		description: run.title,
		setup: {
			seconds: round(run.setupSeconds, 3),
			rssAfterStartMiB: mib(run.rssAfterStart),
			rssAfterConnectMiB: mib(run.rssAfterConnect),
			...(run.terminalsByNode ? { terminalsByGateway: run.terminalsByNode } : {})
		},
		...(run.cluster ? { cluster: run.cluster } : {}),
		figures: {
			throughputTasksPerSecond: closedFigures.tasksPerSecond,
			submitToReceiveMs: pick(closed.toReceive),
			ackToCompletedMs: pick(closed.ackToCompleted),
			submitToCompletedMs: pick(closed.toCompleted),
			openLoop: {
				rate: params.rate,
				achievedTasksPerSecond: openFigures.tasksPerSecond,
				overCapacity: overCapacity(open),
				intendedToReceiveMs: pick(open.toReceive),
				intendedToCompletedMs: pick(open.toCompleted),
				ackToCompletedMs: pick(open.ackToCompleted)
			},
			cpuMsPerTask: closedFigures.cpu.allMsPerTask,
			ternCpuMsPerTask: closedFigures.cpu.ternMsPerTask,
			databaseCpuMsPerTask: closedFigures.cpu.databaseMsPerTask,
			natsCpuMsPerTask: closedFigures.cpu.natsMsPerTask,
			loadWorkerCpuMsPerTask: closedFigures.cpu.loadWorkerMsPerTask,
			serverThreadCpuMsPerTask: closedFigures.cpu.serverThreadMsPerTask,
			ternRssPeakMiB: Math.max(...figures.map(f => f.memory.ternRssPeakMiB))
		},
		phases: figures,
		integrity: {
			deliveries: run.totals.deliveries,
			duplicates: run.totals.duplicates.length,
			duplicateSample: run.totals.duplicates.slice(0, 10),
			redeliveries: run.totals.redeliveries,
			cancels: run.totals.cancels,
			disconnects: run.totals.disconnects,
			errors: run.totals.errors,
			errorSamples: run.totals.errorSamples
		},
		openLoopOverCapacity: overCapacity(open),
		ok: failures.length === 0,
		failures
	};
};

mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
	outFile,
	JSON.stringify(
		{
			benchmark: "lifecycle",
			modes,
			timestamp: new Date().toISOString(),
			machine,
			parameters: params,
			results: Object.fromEntries(analysed.map(a => [a.run.mode, modeJson(a)])),
			ok: failures.length === 0,
			failures,
			...(crashes.length > 0 ? { crashes } : {})
		},
		null,
		2
	) + "\n"
);
console.log(`results written to ${outFile}`);
process.exit(failures.length === 0 ? 0 : 1);
