/**
 * Gateway benchmark: what ONE gateway process (`node tern.ts` with SERVICES=gateway, on NATS)
 * holds and moves. Two sections of the suite:
 *
 * - terminals: idle socket.io terminals connected as the agent connects them (websocket
 *   transport, engine.io pings every 25 s, a `heartbeat` every 30 s), in steps. At each step:
 *   the gateway's RSS and V8 heap per connection (above the gateway with none), its CPU while
 *   the terminals only keep alive, and the rate at which the step's new terminals got in (each
 *   connection is verified by auth and terminals on the api node and announced to the cache and
 *   the dispatcher). And the gateway's RSS at 50,000 terminals.
 * - push: at a fixed number of terminals, tasks pushed through the gateway (`gateway.pushMany`,
 *   as the dispatcher does) and acknowledged by the terminals: the most per second with a
 *   bounded number unacknowledged (closed loop), and the push→ack latency at a fixed rate below
 *   that (open loop, about 60 % of it, so that the figure is not queueing).
 *
 * The other nodes are real (api+auth+terminals, cache; a fresh MariaDB database), except the
 * dispatcher: the benchmark's own broker, on the same NATS namespace, runs a sink service named
 * `dispatcher` that answers whatever the gateway calls (connected, disconnected, replies, ack,
 * result, progress) at once and notes when each ack arrives. So the figures are the gateway's,
 * not the dispatcher's or the database's. The terminals run in a few child processes
 * (bench/lib/terminal-swarm.ts), bound to several loopback addresses so as not to run out of
 * ephemeral ports; everything shares this machine's cores.
 *
 * A process cannot hold more connections than its open-file limit (`ulimit -n`, which only root
 * with CAP_SYS_RESOURCE may raise): steps above the gateway's limit are not measured, and the
 * RSS at 50,000 is then extrapolated from the largest step (the row says so).
 *
 *   npm exec -- node bench/gateway.ts                       # steps 10000,25000,50000; push at 10000; 3 repetitions
 *   npm exec -- node bench/gateway.ts --quick               # steps 300,1000; push at 300; 1 repetition
 *   npm exec -- node bench/gateway.ts --steps 5000,10000 --push 5000 --reps 1 --idle 30
 *
 * TERN_BENCH_LOGS=1 echoes every node's output.
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import Moleculer, { type Context, type ServiceBroker } from "moleculer";
import { brokerOptions, loadConfig } from "../moleculer.config.ts";
import { PromptDiscoverer } from "../lib/discoverer.ts";
import type { GatewayPush, ReplyAnswer, RepliesParams, TaskPush } from "../lib/contracts.ts";
import type { Options, Part, Row } from "./lib/cells.ts";
import { pidsNamed, processCpuUs, processRss } from "./lib/cluster.ts";
import { loadAverage } from "./lib/machine.ts";
import { NATS_URL, ProcessCluster, type NodeProcess } from "../test/support/node-process.ts";
import { inBatches } from "../test/support/rest.ts";
import { round, summarize } from "./lib/stats.ts";
import type { ConnectReport, SwarmReply, SwarmRequest, SwarmStats, SwarmTerminal } from "./lib/terminal-swarm.ts";
import { printRows } from "./lib/report.ts";

export interface GatewayParams {
	/** Connected terminals at each step of the terminals section. */
	steps: number[];
	/** Terminals connected during the push section. */
	pushTerminals: number;
	/** Child processes the terminals are spread over. */
	children: number;
	/** Loopback addresses the terminals connect from, in turn. */
	localAddresses: string[];
	/** Seconds of idle at each step over which the gateway's CPU is measured. */
	idleSeconds: number;
	/**
	 * Seconds from the start of a step's connecting to the start of its idle window: until every
	 * new terminal has had its first engine.io ping (25 s) and heartbeat (30 s), the keep-alive
	 * traffic is not yet at its steady rate.
	 */
	settleSeconds: number;
	/** Seconds of each push phase (closed loop, then open loop). */
	pushSeconds: number;
	/** Pushes sent but not yet acknowledged, at most, in the closed loop. */
	window: number;
	/** Pushes per `gateway.pushMany` call at most. */
	batch: number;
	/** Open loop rate as a share of the closed loop's (the latency target's), and a lighter one. */
	openShare: number;
	lightShare: number;
}

export function defaults(quick: boolean): GatewayParams {
	return {
		steps: quick ? [300, 1000] : [10_000, 25_000, 50_000],
		pushTerminals: quick ? 300 : 10_000,
		children: quick ? 2 : 4,
		localAddresses: ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"],
		idleSeconds: quick ? 2 : 10,
		settleSeconds: quick ? 0 : 30,
		pushSeconds: quick ? 2 : 5,
		window: 4000,
		batch: 500,
		openShare: 0.6,
		lightShare: 0.25
	};
}

const ADMIN_PASSWORD = "bench-admin-password";
const GATEWAY = "gw";
/** Connections the gateway process needs besides the terminals' (NATS, listeners, files), at most. */
const FD_MARGIN = 200;
/** Connection handshakes in flight per child process. */
const CONNECT_PARALLEL = 100;
/** The figure the memory target is about. */
const TARGET_TERMINALS = 50_000;
const SINK_NOTE =
	"one gateway process; the dispatcher is the benchmark's sink (answers at once, notes each ack): the gateway's capacity alone";

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const MiB = 1024 * 1024;

// ---------------------------------------------------------------- the sink dispatcher

/** When each push was sent and its ack arrived at the sink (performance.now(), ms; 0 = not yet), by sequence number. */
class Ledger {
	/** Pushes one phase may send at most. */
	static readonly CAPACITY = 4_000_000;
	sentAt = new Float64Array(Ledger.CAPACITY);
	ackAt = new Float64Array(Ledger.CAPACITY);
	acks = 0;
	results = 0;
	/** Acks of a task not pushed by this phase (or twice). */
	strays = 0;
	onAck: (() => void) | null = null;

	reset(): void {
		this.sentAt.fill(0);
		this.ackAt.fill(0);
		this.acks = 0;
		this.strays = 0;
	}

	ack(taskId: string, now: number): void {
		const seq = Number(taskId.slice(1));
		if (!(seq >= 0 && this.sentAt[seq] > 0 && this.ackAt[seq] === 0)) {
			this.strays++;
			return;
		}
		this.ackAt[seq] = now;
		this.acks++;
	}
}

/** What the gateway calls on `dispatcher`, answered at once. */
function sinkService(ledger: Ledger) {
	const ok = { ok: true };
	return {
		name: "dispatcher",
		actions: {
			connected: () => ok,
			disconnected: () => ok,
			drain: () => ok,
			replies(ctx: Context<RepliesParams>): ReplyAnswer[] {
				const now = performance.now();
				const answers = ctx.params.replies.map(reply => {
					if (reply.kind === "ack") {
						ledger.ack(reply.taskId, now);
						return { ok: { taskId: reply.taskId, attempt: reply.attempt, status: "PROCESSING" } };
					}
					ledger.results++;
					return { ok: { taskId: reply.taskId, attempt: reply.attempt, status: "COMPLETED" } };
				});
				ledger.onAck?.();
				return answers;
			},
			// One call per reply: gateways before `dispatcher.replies`.
			ack(ctx: Context<{ taskId: string; attempt: number }>) {
				ledger.ack(ctx.params.taskId, performance.now());
				ledger.onAck?.();
				return { taskId: ctx.params.taskId, attempt: ctx.params.attempt, status: "PROCESSING" };
			},
			result(ctx: Context<{ taskId: string; attempt: number }>) {
				ledger.results++;
				return { taskId: ctx.params.taskId, attempt: ctx.params.attempt, status: "COMPLETED" };
			},
			progress(ctx: Context<{ taskId: string; attempt: number }>) {
				return { taskId: ctx.params.taskId, attempt: ctx.params.attempt, status: "PROCESSING" };
			}
		}
	};
}

// ---------------------------------------------------------------- the cluster

/** api+auth+terminals, cache and one gateway as processes; the benchmark's broker (with the sink) on the same namespace. */
class GatewayCluster extends ProcessCluster {
	broker!: ServiceBroker;
	readonly ledger = new Ledger();

	static async start(): Promise<GatewayCluster> {
		const cluster = new GatewayCluster("gwbench");
		// The gateway waits for a dispatcher before it is ready: the sink must be there first.
		cluster.broker = new Moleculer.ServiceBroker({
			...brokerOptions(
				loadConfig({
					TRANSPORTER: NATS_URL,
					NAMESPACE: cluster.namespace,
					NODE_ID: "bench",
					JWT_SECRET: "unused-by-the-benchmark-broker-but-32-bytes-long",
					LOGLEVEL: "warn"
				})
			),
			// The sink answers at once; a broken circuit would only hide a failure.
			circuitBreaker: { enabled: false },
			// Other benchmarks may share the machine: a node slow to beat is not one to give up on here.
			registry: { discoverer: new PromptDiscoverer({ failAfterMs: 15_000, checkEveryMs: 500 }) }
		});
		cluster.broker.createService(sinkService(cluster.ledger));
		await cluster.broker.start();
		try {
			await cluster.launch({
				nodes: [
					{ id: "api", services: ["api", "auth", "terminals"] },
					{ id: "cache", services: ["cache"] },
					{ id: GATEWAY, services: ["gateway"] }
				],
				adminPassword: ADMIN_PASSWORD,
				env: { TERN_RATE_LIMIT: "0", TERN_TOKEN_RATE_LIMIT: "0", TERN_SOCKET_RATE_LIMIT: "0" },
				node: { echo: process.env.TERN_BENCH_LOGS === "1" }
			});
		} catch (err) {
			await cluster.broker.stop();
			throw err;
		}
		return cluster;
	}

	get gateway(): NodeProcess {
		return this.node(GATEWAY);
	}

	async restartGateway(): Promise<void> {
		await this.gateway.stop();
		this.gateway.start();
		await this.gateway.waitReady();
		// Until the broker sees the new gateway's actions.
		const deadline = Date.now() + 15_000;
		while (
			!(await this.sessionCount().then(
				() => true,
				() => false
			))
		) {
			if (Date.now() > deadline) throw new Error("the restarted gateway is not reachable from the benchmark's broker");
			await sleep(100);
		}
	}

	/** Registers terminals through `terminals.register` (an internal call: no principal), many at a time. */
	async register(count: number, log: (line: string) => void): Promise<SwarmTerminal[]> {
		const started = performance.now();
		const ids = Array.from({ length: count }, (_, i) => `gw-${String(i).padStart(6, "0")}`);
		const terminals = await inBatches(ids, 64, async id => {
			const reply = await this.broker.call<{ token: string }, { id: string; concurrency: number }>("terminals.register", {
				id,
				concurrency: 1000
			});
			return { id, token: reply.token };
		});
		log(`registered ${count} terminals in ${round((performance.now() - started) / 1000, 1)} s`);
		return terminals;
	}

	async sessionCount(): Promise<number> {
		return (await this.broker.call<{ sessions: number }, object>("gateway.health", {}, { nodeID: GATEWAY })).sessions;
	}

	/** The gateway process's memory as it sees it (process.memoryUsage()), bytes. */
	async memory(): Promise<NodeJS.MemoryUsage> {
		const health = await this.broker.call<{ process: { memory: NodeJS.MemoryUsage } }, object>(
			"$node.health",
			{},
			{ nodeID: GATEWAY }
		);
		return health.process.memory;
	}

	hasPushMany(): boolean {
		return this.broker.registry.getActionEndpoints("gateway.pushMany") !== undefined;
	}

	override async close(): Promise<void> {
		await super.close();
		await this.broker.stop();
	}
}

/** The open-file limit of a running process (its `ulimit -n`). */
function openFileLimit(pid: number): number {
	const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
	return !match || match[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[1]);
}

// ---------------------------------------------------------------- the terminals' processes

class Swarm {
	private readonly child: ChildProcess;
	private next = 1;
	private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
	private readonly exited: Promise<void>;

	constructor() {
		this.child = fork(new URL("./lib/terminal-swarm.ts", import.meta.url), [], {
			stdio: ["ignore", "inherit", "inherit", "ipc"]
		});
		this.child.on("message", (reply: SwarmReply) => {
			const waiter = this.waiting.get(reply.id);
			if (!waiter) return;
			this.waiting.delete(reply.id);
			if (reply.ok) waiter.resolve(reply.result);
			else waiter.reject(new Error(reply.error));
		});
		this.exited = new Promise(resolve =>
			this.child.once("exit", () => {
				for (const waiter of this.waiting.values()) waiter.reject(new Error("a terminal process exited"));
				this.waiting.clear();
				resolve();
			})
		);
	}

	get pid(): number {
		return this.child.pid!;
	}

	call<T>(command: SwarmRequest): Promise<T> {
		const id = this.next++;
		return new Promise<T>((resolve, reject) => {
			this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
			this.child.send({ ...command, id });
		});
	}

	async close(): Promise<void> {
		await this.call({ cmd: "close" }).catch(() => undefined);
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
		await this.exited;
		clearTimeout(timer);
	}
}

// ---------------------------------------------------------------- the terminals section

interface StepFigures {
	terminals: number;
	rssPerConnection: number;
	heapPerConnection: number;
	idleCpuPercent: number;
	connectPerSecond: number;
	rssMiB: number;
	failed: number;
}

async function waitSessions(cluster: GatewayCluster, count: number, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	let seen = -1;
	while ((seen = await cluster.sessionCount()) !== count) {
		if (Date.now() > deadline) throw new Error(`the gateway holds ${seen} sessions, not ${count}`);
		await sleep(100);
	}
}

async function connectStep(
	cluster: GatewayCluster,
	swarms: Swarm[],
	terminals: SwarmTerminal[],
	from: number,
	to: number,
	params: GatewayParams
): Promise<{ elapsedMs: number; failed: number; samples: string[] }> {
	const started = performance.now();
	const reports = await Promise.all(
		swarms.map((swarm, c) =>
			swarm.call<ConnectReport>({
				cmd: "connect",
				url: cluster.gateway.url,
				terminals: terminals.slice(from, to).filter((_, i) => (from + i) % swarms.length === c),
				localAddresses: params.localAddresses,
				parallel: CONNECT_PARALLEL
			})
		)
	);
	const failed = reports.reduce((n, r) => n + r.failed, 0);
	// Connected on the client's side; the gateway registers a session right after.
	await waitSessions(cluster, to - failed, 30_000).catch(() => undefined);
	return { elapsedMs: performance.now() - started, failed, samples: reports.flatMap(r => r.errorSamples) };
}

async function measureSteps(
	cluster: GatewayCluster,
	swarms: Swarm[],
	terminals: SwarmTerminal[],
	steps: number[],
	params: GatewayParams,
	log: (line: string) => void
): Promise<{ base: { rss: number; heap: number }; steps: StepFigures[] }> {
	const pid = cluster.gateway.pid;
	await sleep(1000);
	const base = { rss: processRss(pid) ?? 0, heap: (await cluster.memory()).heapUsed };
	log(`gateway with no terminals: RSS ${round(base.rss / MiB, 1)} MiB, heap ${round(base.heap / MiB, 1)} MiB`);
	const figures: StepFigures[] = [];
	let connected = 0;
	for (const step of steps) {
		const stepStart = performance.now();
		const { elapsedMs, failed, samples } = await connectStep(cluster, swarms, terminals, connected, step, params);
		if (failed > 0) log(`  ${failed} connections failed: ${samples.slice(0, 3).join("; ")}`);
		const connectPerSecond = ((step - connected - failed) * 1000) / elapsedMs;
		connected = step;
		await sleep(Math.max(0, stepStart + params.settleSeconds * 1000 - performance.now()));
		const held = await cluster.sessionCount();
		const cpu0 = processCpuUs(pid) ?? 0;
		const t0 = performance.now();
		await sleep(params.idleSeconds * 1000);
		const idleCpuPercent = (((processCpuUs(pid) ?? 0) - cpu0) / ((performance.now() - t0) * 1000)) * 100;
		const rss = processRss(pid) ?? 0;
		const memory = await cluster.memory();
		const heap = memory.heapUsed;
		const figure: StepFigures = {
			terminals: held,
			rssPerConnection: (rss - base.rss) / held,
			heapPerConnection: (heap - base.heap) / held,
			idleCpuPercent,
			connectPerSecond,
			rssMiB: rss / MiB,
			failed
		};
		figures.push(figure);
		log(
			`  ${held} terminals: RSS ${round(figure.rssMiB, 1)} MiB (${Math.round(figure.rssPerConnection)} B each), ` +
				`heap ${Math.round(figure.heapPerConnection)} B each, idle CPU ${round(idleCpuPercent, 1)} %, ` +
				`connected at ${Math.round(connectPerSecond)}/s; heap total ${round(memory.heapTotal / MiB, 1)} MiB, ` +
				`external ${round(memory.external / MiB, 1)} MiB`
		);
	}
	return { base, steps: figures };
}

// ---------------------------------------------------------------- the push section

/** CPU time of groups of processes over a window, % of one core each. */
class CpuMeter {
	private readonly groups: Record<string, number[]>;
	private readonly start: Record<string, number> = {};
	private readonly t0 = performance.now();

	constructor(groups: Record<string, number[]>) {
		this.groups = groups;
		for (const [name, pids] of Object.entries(groups)) this.start[name] = CpuMeter.sum(pids);
	}

	private static sum(pids: number[]): number {
		return pids.reduce((n, pid) => n + (processCpuUs(pid) ?? 0), 0);
	}

	read(): Record<string, number> {
		const us = (performance.now() - this.t0) * 1000;
		return Object.fromEntries(
			Object.entries(this.groups).map(([name, pids]) => [
				name,
				round(((CpuMeter.sum(pids) - this.start[name]) / us) * 100, 1)
			])
		);
	}
}

/** An open-loop phase. */
interface OpenFigures {
	rate: number;
	acked: number;
	missing: number;
	latency: ReturnType<typeof summarize>;
	/** How late the 2 ms clock sent pushes after their intended time. */
	sendLagP99: number;
	/** % of a core per kind of process. */
	cpu: Record<string, number>;
}

interface PushFigures {
	closedPerSecond: number;
	/** At `openShare` of the closed loop's rate, and at `lightShare`. */
	open: OpenFigures;
	light: OpenFigures;
	notConnected: number;
	callErrors: number;
	strays: number;
	/** % of a core per kind of process, closed loop. */
	cpuClosed: Record<string, number>;
	via: string;
}

function taskPush(seq: number, createdAt: string): TaskPush {
	return {
		taskId: `p${seq}`,
		attempt: 1,
		type: "bench",
		payload: { n: seq },
		priority: 5,
		timeout: 300,
		ackTimeout: 30,
		createdAt
	};
}

async function measurePush(
	cluster: GatewayCluster,
	targets: string[],
	swarms: Swarm[],
	params: GatewayParams,
	log: (line: string) => void
): Promise<PushFigures> {
	const ledger = cluster.ledger;
	const useMany = cluster.hasPushMany();
	const processes = {
		gateway: [cluster.gateway.pid],
		terminals: swarms.map(s => s.pid),
		benchmark: [process.pid],
		nats: pidsNamed("nats-server")
	};
	let notConnected = 0;
	let callErrors = 0;
	let seq = 0;
	const createdAt = new Date().toISOString();

	/** Sends the next `n` pushes, round robin over the terminals. */
	const send = (n: number) => {
		const pushes: GatewayPush[] = new Array<GatewayPush>(n);
		const now = performance.now();
		for (let k = 0; k < n; k++, seq++) {
			ledger.sentAt[seq] = now;
			pushes[k] = { terminalId: targets[seq % targets.length], event: "task", data: taskPush(seq, createdAt) };
		}
		if (useMany) {
			cluster.broker.call<boolean[], { pushes: GatewayPush[] }>("gateway.pushMany", { pushes }, { nodeID: GATEWAY }).then(
				sent => (notConnected += sent.filter(s => !s).length),
				() => callErrors++
			);
		} else {
			for (const push of pushes)
				cluster.broker.call("gateway.push", push, { nodeID: GATEWAY }).catch(() => {
					notConnected++;
				});
		}
	};

	// Closed loop: at most `window` unacknowledged, topped up as acks come in.
	ledger.reset();
	seq = 0;
	let running = true;
	const pump = () => {
		while (running && seq - ledger.acks < params.window) send(Math.min(params.batch, params.window - (seq - ledger.acks)));
	};
	ledger.onAck = pump;
	const warmMs = 1000;
	const start = performance.now();
	pump();
	await sleep(warmMs);
	const acks0 = ledger.acks;
	const closedCpu = new CpuMeter(processes);
	const t0 = performance.now();
	await sleep(params.pushSeconds * 1000);
	const closedMs = performance.now() - t0;
	const closedPerSecond = ((ledger.acks - acks0) * 1000) / closedMs;
	const cpuClosed = closedCpu.read();
	running = false;
	ledger.onAck = null;
	await waitQuiet(ledger, () => seq);
	log(
		`  closed loop: ${Math.round(closedPerSecond)} pushes/s acknowledged (window ${params.window}, ${round((t0 - start) / 1000, 1)} s warm-up); CPU % ${JSON.stringify(cpuClosed)}`
	);

	// Open loop at a share of that rate: pushes sent on a 2 ms clock, latency from the send.
	const openLoop = async (share: number): Promise<OpenFigures> => {
		const rate = Math.max(100, Math.round((closedPerSecond * share) / 100) * 100);
		ledger.reset();
		seq = 0;
		const total = Math.min(Ledger.CAPACITY, Math.round(rate * params.pushSeconds));
		const intended = new Float64Array(total);
		const meter = new CpuMeter(processes);
		const openStart = performance.now();
		await new Promise<void>(resolve => {
			const timer = setInterval(() => {
				const due = Math.min(total, Math.floor(((performance.now() - openStart) * rate) / 1000));
				while (seq < due) {
					const n = Math.min(params.batch, due - seq);
					for (let k = 0; k < n; k++) intended[seq + k] = openStart + ((seq + k) * 1000) / rate;
					send(n);
				}
				if (seq >= total) {
					clearInterval(timer);
					resolve();
				}
			}, 2);
		});
		const cpu = meter.read();
		await waitQuiet(ledger, () => seq);
		// The first half second is the ramp (connections warm, JIT): left out.
		const latencies: number[] = [];
		const lags: number[] = [];
		let missing = 0;
		for (let i = Math.floor(rate / 2); i < total; i++) {
			lags.push(ledger.sentAt[i] - intended[i]);
			if (ledger.ackAt[i]) latencies.push(ledger.ackAt[i] - ledger.sentAt[i]);
			else missing++;
		}
		const figures = {
			rate,
			acked: latencies.length,
			missing,
			latency: summarize(latencies),
			sendLagP99: summarize(lags).p99,
			cpu
		};
		log(
			`  open loop at ${rate}/s: push→ack p50 ${figures.latency.p50} ms, p99 ${figures.latency.p99} ms, max ${figures.latency.max} ms; ` +
				`${missing} without ack; send lag p99 ${figures.sendLagP99} ms; CPU % ${JSON.stringify(cpu)}`
		);
		return figures;
	};
	const open = await openLoop(params.openShare);
	const light = await openLoop(params.lightShare);
	return {
		closedPerSecond,
		open,
		light,
		notConnected,
		callErrors,
		strays: ledger.strays,
		cpuClosed,
		via: useMany ? `gateway.pushMany (≤ ${params.batch} a call)` : "gateway.push (one call each)"
	};
}

/** Until every push sent has its ack, or none came for a second. */
async function waitQuiet(ledger: Ledger, sent: () => number): Promise<void> {
	let last = ledger.acks;
	let still = 0;
	while (ledger.acks < sent() && still < 10) {
		await sleep(100);
		still = ledger.acks === last ? still + 1 : 0;
		last = ledger.acks;
	}
}

// ---------------------------------------------------------------- the part

export async function runWith(options: Options, params: GatewayParams): Promise<Row[]> {
	const { log, reps } = options;
	const started = Date.now();
	const loadBefore = loadAverage();
	const cluster = await GatewayCluster.start();
	const limit = openFileLimit(cluster.gateway.pid);
	const fits = Math.max(0, (Number.isFinite(limit) ? limit : Number.POSITIVE_INFINITY) - FD_MARGIN);
	const steps = params.steps.filter(s => s <= fits);
	const skipped = params.steps.filter(s => s > fits);
	if (skipped.length > 0) {
		if (steps.length === 0 || steps[steps.length - 1] < fits) steps.push(Math.min(fits, Math.max(...skipped)));
		log(
			`the gateway may hold ${limit} open files (ulimit -n): steps ${skipped.join(", ")} do not fit; measuring up to ${steps[steps.length - 1]}`
		);
	}
	const pushTerminals = Math.min(params.pushTerminals, fits);
	const stepRuns: StepFigures[][] = [];
	const bases: { rss: number; heap: number }[] = [];
	const pushRuns: PushFigures[] = [];
	const swarmCpu: number[] = [];
	try {
		const terminals = await cluster.register(Math.max(...steps, pushTerminals), log);
		for (let rep = 1; rep <= reps; rep++) {
			log(`repetition ${rep} of ${reps}`);
			if (rep > 1) await cluster.restartGateway();
			const swarms = Array.from({ length: params.children }, () => new Swarm());
			try {
				const measured = await measureSteps(cluster, swarms, terminals, steps, params, log);
				stepRuns.push(measured.steps);
				bases.push(measured.base);
				// The push section at fewer terminals: the rest hang up.
				const connected = steps[steps.length - 1];
				if (pushTerminals < connected) {
					await Promise.all(
						swarms.map((swarm, c) =>
							swarm.call({ cmd: "trim", keep: Math.ceil((pushTerminals - c) / swarms.length) })
						)
					);
				} else if (pushTerminals > connected) {
					await connectStep(cluster, swarms, terminals, connected, pushTerminals, params);
				}
				await waitSessions(cluster, pushTerminals);
				log(`  push at ${pushTerminals} terminals`);
				const targets = (await Promise.all(swarms.map(s => s.call<string[]>({ cmd: "ids" })))).flat();
				pushRuns.push(await measurePush(cluster, targets, swarms, params, log));
				const stats = await Promise.all(swarms.map(s => s.call<SwarmStats>({ cmd: "stats" })));
				swarmCpu.push(stats.reduce((n, s) => n + s.cpuUs, 0));
				const problems = stats.flatMap(s => s.errorSamples);
				if (problems.length > 0) log(`  terminals reported: ${problems.slice(0, 5).join("; ")}`);
			} finally {
				await Promise.all(swarms.map(s => s.close()));
			}
		}
	} finally {
		await cluster.close();
	}
	return rows(params, {
		steps,
		limit,
		stepRuns,
		bases,
		pushRuns,
		pushTerminals,
		wallMs: Date.now() - started,
		loadAverage: { before: loadBefore, after: loadAverage() }
	});
}

/** What the repetitions measured. */
interface Measured {
	/** The steps that fit the gateway's open-file limit. */
	steps: number[];
	limit: number;
	/** Per repetition, per step. */
	stepRuns: StepFigures[][];
	/** Per repetition: the gateway with no terminals. */
	bases: { rss: number; heap: number }[];
	pushRuns: PushFigures[];
	pushTerminals: number;
	wallMs: number;
	/** Other work on the machine shows here (1, 5, 15 minutes). */
	loadAverage: { before: number[]; after: number[] };
}

function rows(params: GatewayParams, measured: Measured): Row[] {
	const { steps, limit, stepRuns, bases, pushRuns, pushTerminals, wallMs } = measured;
	const system = "tern gateway";
	const durability = "n/a (in memory)";
	const common = {
		gateway: "one `node tern.ts` process, SERVICES=gateway; api+auth+terminals and cache are other processes",
		terminals: `socket.io-client, websocket transport, engine.io pings every 25 s, heartbeat every 30 s; in ${params.children} processes`,
		baseRssMiB: bases.map(b => round(b.rss / MiB, 1)),
		baseHeapMiB: bases.map(b => round(b.heap / MiB, 1)),
		openFileLimit: limit,
		loadAverage: measured.loadAverage,
		wallSeconds: round(wallMs / 1000, 1)
	};
	const out: Row[] = [];
	steps.forEach((step, i) => {
		const at = (pick: (f: StepFigures) => number) => stepRuns.map(run => round(pick(run[i])));
		const label = step.toLocaleString("en-US");
		out.push(
			{
				section: "terminals",
				system,
				durability,
				figure: `gateway RSS per connection @${label}`,
				unit: "bytes",
				values: at(f => f.rssPerConnection),
				detail: { ...common, rssMiB: at(f => f.rssMiB), failedConnections: at(f => f.failed) }
			},
			{
				section: "terminals",
				system,
				durability,
				figure: `gateway heap per connection @${label}`,
				unit: "bytes",
				values: at(f => f.heapPerConnection)
			},
			{
				section: "terminals",
				system,
				durability,
				figure: `gateway idle CPU @${label}`,
				unit: "% core",
				values: at(f => f.idleCpuPercent),
				detail: { idleSeconds: params.idleSeconds, fromConnectStartSeconds: params.settleSeconds }
			},
			{
				section: "terminals",
				system,
				durability,
				figure: `connect rate to ${label}`,
				unit: "conn/s",
				values: at(f => f.connectPerSecond),
				detail: {
					note: "each: auth.verify + terminals.resolve on the api node, terminal.connected, dispatcher.connected"
				}
			}
		);
	});
	// The memory target, at 50,000: measured when it fits, else extrapolated along the slope between
	// the two largest steps (what one more connection costs once the heap has grown to its working
	// size), or from the gateway with none when there is only one step.
	const last = steps.length - 1;
	const reached = steps[last] >= TARGET_TERMINALS;
	const at50k = (run: StepFigures[], r: number): number => {
		const top = run[last];
		if (reached) return top.rssMiB;
		if (last === 0) return (bases[r].rss + top.rssPerConnection * TARGET_TERMINALS) / MiB;
		const below = run[last - 1];
		const slope = (top.rssMiB - below.rssMiB) / (top.terminals - below.terminals);
		return top.rssMiB + slope * (TARGET_TERMINALS - top.terminals);
	};
	out.push({
		section: "terminals",
		system,
		durability,
		figure: `gateway RSS @50k${reached ? "" : " (extrapolated)"}`,
		unit: "MiB",
		values: stepRuns.map((run, r) => round(at50k(run, r), 1)),
		target: { op: "<=", value: 1228, note: "1.2 GB at 50,000 terminals" },
		detail: reached
			? { measuredAt: steps[last] }
			: {
					extrapolatedFrom: steps.slice(-2),
					how:
						last === 0
							? "RSS with no terminals + 50,000 × RSS per connection at the one step"
							: "RSS at the largest step + the RSS per connection between the two largest steps × the connections still missing",
					why: `the gateway process may open ${limit} files (ulimit -n, a hard limit on this machine)`
				}
	});
	const push = (pick: (f: PushFigures) => number) => pushRuns.map(f => round(pick(f)));
	const latencyRow = (share: number, phase: (f: PushFigures) => OpenFigures, target?: Row["target"]): Row => ({
		section: "push",
		system,
		durability,
		figure: `p99 push→ack, open loop @${Math.round(share * 100)} % of max`,
		unit: "ms",
		values: push(f => phase(f).latency.p99),
		...(target ? { target } : {}),
		detail: {
			note: SINK_NOTE,
			rate: push(f => phase(f).rate),
			p50: push(f => phase(f).latency.p50),
			p90: push(f => phase(f).latency.p90),
			max: push(f => phase(f).latency.max),
			acked: push(f => phase(f).acked),
			missing: push(f => phase(f).missing),
			sendLagP99: push(f => phase(f).sendLagP99),
			cpuPercent: pushRuns.map(f => phase(f).cpu)
		}
	});
	out.push(
		{
			section: "push",
			system,
			durability,
			figure: `pushes/s with ack, closed loop @${pushTerminals.toLocaleString("en-US")} terminals`,
			unit: "pushes/s",
			values: push(f => f.closedPerSecond),
			target: { op: ">=", value: 30_000 },
			detail: {
				note: SINK_NOTE,
				via: pushRuns[0]?.via,
				window: params.window,
				seconds: params.pushSeconds,
				cpuPercent: pushRuns.map(f => f.cpuClosed),
				notConnected: push(f => f.notConnected),
				callErrors: push(f => f.callErrors),
				strays: push(f => f.strays)
			}
		},
		latencyRow(params.openShare, f => f.open, { op: "<=", value: 20 }),
		latencyRow(params.lightShare, f => f.light)
	);
	return out;
}

export const run: Part = options => runWith(options, defaults(options.quick));

// ---------------------------------------------------------------- alone

if (import.meta.main) {
	const { values: args } = parseArgs({
		options: {
			quick: { type: "boolean", default: false },
			reps: { type: "string" },
			steps: { type: "string" },
			push: { type: "string" },
			idle: { type: "string" }
		},
		strict: true
	});
	const params = defaults(args.quick);
	const whole = (name: string, value: string) => {
		const n = Number(value);
		if (!Number.isInteger(n) || n < 1) {
			console.error(`--${name} takes whole numbers >= 1, got '${value}'`);
			process.exit(2);
		}
		return n;
	};
	if (args.steps) params.steps = args.steps.split(",").map(s => whole("steps", s.trim()));
	if (args.push) params.pushTerminals = whole("push", args.push);
	if (args.idle) params.idleSeconds = whole("idle", args.idle);
	const reps = args.reps === undefined ? (args.quick ? 1 : 3) : whole("reps", args.reps);
	const rows = await runWith({ quick: args.quick, reps, log: line => console.error(line) }, params);
	printRows(rows);
	process.exit(0);
}
