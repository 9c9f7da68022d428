/**
 * Failover benchmark, in cluster mode: how long Tern takes to carry on when one process of a kind
 * dies with SIGKILL (no goodbye to the cluster; its connections dropped by the OS). Three figures,
 * each from the kill to the moment the work that process held is done again elsewhere:
 *
 * - scheduler: a job fires every second (cron with a seconds field); of two scheduler replicas,
 *   the one that fires it (its owner by rendezvous hashing, read from the fire ledger) is killed
 *   just after a fire. The figure runs to the first fire of the job committed by the other replica
 *   (`job_fires.firedAt`). The job's task goes to a terminal that never connects: only the
 *   scheduler is measured.
 * - gateway: N socket.io terminals are connected to one of two gateways, each given both
 *   addresses (it moves to the next one when its connection drops, as test/cluster's terminals
 *   do). The gateway is killed and one task per terminal submitted at once through the api. The
 *   figure runs until the last terminal has reconnected to the other gateway and completed its
 *   task (the server answered its result with COMPLETED).
 * - dispatcher: N terminals owned (rendezvous hashing) by one of two dispatcher replicas each hold
 *   a task delivered to them and not acknowledged. Only the owner enforces their ack deadlines;
 *   the owner is killed 100 ms before the first of them. The survivor must notice, take the
 *   terminals over, enforce the deadlines and redeliver; the terminals let attempt 1 pass and
 *   answer attempt 2 at once, so the figure (kill → every task COMPLETED, `tasks.finishedAt`) is
 *   the takeover, not the work. Left alone, the owner would have redelivered 100–350 ms after
 *   the kill.
 *
 * Each figure has a cluster of its own (bench/lib/cluster.ts: separate `node tern.ts` processes on
 * NATS and a fresh MariaDB database): the killed kind twice, and one process with the rest.
 * Between repetitions the killed process is started again (same node ID and port) and the cluster
 * is let settle; a new job, new terminal sessions, new tasks each time.
 *
 *   npm exec -- node bench/failover.ts             # 5 repetitions, 150 terminals, 50 held tasks
 *   npm exec -- node bench/failover.ts --quick     # 1 repetition, 10 terminals, 10 held tasks
 *   npm exec -- node bench/failover.ts --reps 3
 *
 * Alone, it prints its rows and exits 1 when a takeover did not happen (within 30 s) in some
 * repetition. TERN_BENCH_LOGS=1 echoes every node's output.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { io, type Socket } from "socket.io-client";
import type { TaskPush } from "../lib/contracts.ts";
import { rendezvousOwner } from "../lib/strategies/index.ts";
import type { Options, Part, Row } from "./lib/cells.ts";
import { BenchCluster, type NodeSpec } from "./lib/cluster.ts";
import { loadAverage } from "./lib/machine.ts";
import { TernClient } from "../client/index.ts";
import type { TaskBody } from "../lib/contracts.ts";
import { Rest, inBatches } from "../test/support/rest.ts";
import { confirmed } from "../test/support/confirm.ts";
import { round, summarize } from "./lib/stats.ts";
import { printRows } from "./lib/report.ts";

/** Every figure's target: back at work within 3 s of the kill. */
const TARGET = { op: "<=", value: 3, note: "kill → work done elsewhere" } as const;
/** A takeover not done within this is one that did not happen, ms. */
const TAKEOVER_LIMIT_MS = 30_000;
/** After a killed node is started again: time for every other node to count it in again, ms. */
const SETTLE_MS = 1500;
const DISPATCHERS = ["disp-1", "disp-2"];

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Polls `condition` until it holds; throws after `timeoutMs`. */
async function waitUntil(
	condition: () => boolean | Promise<boolean>,
	timeoutMs: number,
	what: () => string,
	everyMs = 20
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
		await sleep(everyMs);
	}
}

// ---------------------------------------------------------------- a terminal

interface SocketReply {
	ok: boolean;
	status?: string;
	error?: { code?: number; type?: string; message?: string };
}

/**
 * A socket.io terminal that fails over along a list of gateways (socket.io's own reconnection
 * retries one URL only), acks and answers at once, and sends an ack or result again until the
 * server gives a final answer. `answers(task)` false: the push is received and left unanswered.
 */
class FailoverTerminal {
	readonly id: string;
	private readonly token: string;
	private readonly urls: string[];
	private readonly answers: (task: TaskPush) => boolean;
	private socket: Socket | null = null;
	private index = 0;
	private failures = 0;
	private closed = false;
	private heartbeat: NodeJS.Timeout | null = null;
	private connected: (() => void) | null = null;
	/** Every connect: through which URL, when (ms since the epoch). */
	readonly connects: { url: string; at: number }[] = [];
	/** Every push received, when. */
	readonly received: { taskId: string; attempt: number; at: number }[] = [];
	/** Tasks whose result the server answered with COMPLETED, and when. */
	readonly completed = new Map<string, number>();

	constructor(id: string, token: string, urls: string[], answers: (task: TaskPush) => boolean = () => true) {
		this.id = id;
		this.token = token;
		this.urls = urls;
		this.answers = answers;
	}

	/** Connects through the first URL (or the next ones); resolves on the first connect. */
	async start(timeoutMs = 15_000): Promise<void> {
		const first = new Promise<void>(resolve => (this.connected = resolve));
		this.open();
		let timer: NodeJS.Timeout | undefined;
		const timeout = new Promise<never>(
			(_, reject) =>
				(timer = setTimeout(
					() => reject(new Error(`terminal ${this.id} did not connect within ${timeoutMs} ms`)),
					timeoutMs
				))
		);
		try {
			await Promise.race([first, timeout]);
		} finally {
			clearTimeout(timer);
		}
		// 60 s without a word is offline: the dispatcher figure keeps its terminals longer than that.
		this.heartbeat = setInterval(() => this.socket?.connected && this.socket.emit("heartbeat"), 20_000);
	}

	/** The first connect at or after `at`, if any. */
	connectAfter(at: number): { url: string; at: number } | undefined {
		return this.connects.find(c => c.at >= at);
	}

	private open(): void {
		const url = this.urls[this.index];
		const socket = io(`${url}/terminal`, {
			auth: { token: this.token, concurrency: 1 },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true,
			timeout: 5000
		});
		this.socket = socket;
		socket.on("connect", () => {
			this.failures = 0;
			this.connects.push({ url, at: Date.now() });
			this.connected?.();
			this.connected = null;
		});
		socket.on("connect_error", () => this.failover(socket));
		socket.on("disconnect", () => this.failover(socket));
		socket.on("task", (task: TaskPush) => {
			this.received.push({ taskId: task.taskId, attempt: task.attempt, at: Date.now() });
			if (this.answers(task)) void this.run(task);
		});
	}

	/** The connection failed or dropped: the next gateway, after a short pause that grows. */
	private failover(socket: Socket): void {
		if (this.closed || socket !== this.socket) return;
		socket.removeAllListeners();
		socket.close();
		this.socket = null;
		this.index = (this.index + 1) % this.urls.length;
		const pause = Math.min(50 * 2 ** this.failures++, 1000);
		setTimeout(() => !this.closed && this.open(), pause);
	}

	private async run(task: TaskPush): Promise<void> {
		const ref = { taskId: task.taskId, attempt: task.attempt };
		if (!(await this.send("ack", ref)).ok) return;
		const reply = await this.send("result", { ...ref, status: "success", output: { by: this.id } });
		if (reply.ok && reply.status === "COMPLETED") this.completed.set(task.taskId, Date.now());
	}

	/** Emits until the server answers for good, over whichever gateway is connected. */
	private async send(event: "ack" | "result", data: Record<string, unknown>): Promise<SocketReply> {
		const deadline = Date.now() + 60_000;
		while (!this.closed && Date.now() < deadline) {
			const socket = this.socket;
			if (socket?.connected) {
				try {
					const reply = (await socket.timeout(5000).emitWithAck(event, data)) as SocketReply;
					const error = reply.error;
					// A server error or a state conflict may settle differently when sent again.
					if (reply.ok || (error && (error.code ?? 500) < 500 && error.type !== "STATE_CONFLICT")) return reply;
				} catch {
					/* no answer: the connection dropped or the gateway is gone; try again */
				}
			}
			await sleep(20);
		}
		return { ok: false, error: { type: "GAVE_UP" } };
	}

	close(): void {
		this.closed = true;
		if (this.heartbeat) clearInterval(this.heartbeat);
		this.socket?.removeAllListeners();
		this.socket?.close();
		this.socket = null;
	}
}

// ---------------------------------------------------------------- the cluster

interface Harness {
	cluster: BenchCluster;
	rest: Rest;
	durability: string;
}

async function startCluster(name: string, nodes: NodeSpec[]): Promise<Harness> {
	const adminPassword = randomBytes(12).toString("base64url");
	const cluster = await BenchCluster.start({
		name,
		nodes,
		adminPassword,
		env: { TERN_RATE_LIMIT: "0", TERN_TOKEN_RATE_LIMIT: "0", TERN_SOCKET_RATE_LIMIT: "0" }
	});
	try {
		const rest = new Rest(cluster.node("core").url);
		// Until the api logs in and reaches the services behind it.
		await waitUntil(
			async () => {
				try {
					if (!rest.token) await rest.login("admin", adminPassword);
					return (
						(await rest.call("GET", "/api/tasks?pageSize=1")).status === 200 &&
						(await rest.call("GET", "/api/terminals")).status === 200
					);
				} catch {
					return false;
				}
			},
			30_000,
			() => "the api to reach the cluster",
			100
		);
		const [{ flush }] = await cluster.db.query<{ flush: number }>("SELECT @@innodb_flush_log_at_trx_commit AS flush");
		return { cluster, rest, durability: `innodb flush=${flush}` };
	} catch (err) {
		await cluster.close();
		throw err;
	}
}

/** Starts a killed node again and waits until it is ready and the others count it in. */
async function restore(harness: Harness, id: string): Promise<void> {
	const node = harness.cluster.node(id);
	if (node.running) return;
	node.start();
	await node.waitReady();
	await sleep(SETTLE_MS);
}

/** `id → { status, nodeID }` of every terminal, per the api. */
async function presence(rest: Rest): Promise<Map<string, { status: string; nodeID: string | null }>> {
	const reply = await rest.call<{ id: string; status: string; nodeID: string | null }[]>("GET", "/api/terminals");
	if (reply.status !== 200) throw new Error(`GET /api/terminals: ${reply.status} ${JSON.stringify(reply.body)}`);
	return new Map(reply.body.map(t => [t.id, t]));
}

async function register(rest: Rest, ids: string[]): Promise<{ id: string; token: string }[]> {
	return inBatches(ids, 8, async id => ({ id, token: await rest.registerTerminal(id, { concurrency: 1 }) }));
}

/** The state a figure needs before its kill was not reached; nothing was measured. */
class NotReady extends Error {}

async function submit(rest: Rest, body: TaskBody): Promise<string> {
	return (await new TernClient({ url: rest.url, token: rest.token ?? undefined }).submit(body)).taskId;
}

/** First, median and last of a list of ms. */
const ms = (values: number[]) => {
	const s = summarize(values);
	return { first: Math.min(...values), p50: s.p50, max: s.max };
};

// ---------------------------------------------------------------- the figures

interface Rep {
	/** Kill → done elsewhere, s. */
	seconds: number;
	detail: Record<string, unknown>;
}

interface Figure {
	figure: string;
	cluster: { name: string; nodes: NodeSpec[] };
	parameters: Record<string, unknown>;
	/** Once, before the repetitions. */
	prepare(harness: Harness): Promise<void>;
	rep(harness: Harness, n: number, log: (line: string) => void): Promise<Rep>;
	/** After each repetition, whatever happened: the killed node back, clients closed. */
	cleanUp(harness: Harness): Promise<void>;
	close(): void;
}

const REST_OF_CLUSTER = ["api", "auth", "terminals", "cache"];

function schedulerFigure(): Figure {
	const OFFLINE = "failover-offline";
	const replicas = ["sched-1", "sched-2"];
	let victim: string | null = null;
	let jobId: string | null = null;
	interface Fire {
		fireTime: number;
		outcome: string;
		node: string;
		claimedAt: number;
		firedAt: number | null;
	}
	const fires = async (harness: Harness): Promise<Fire[]> =>
		(
			await harness.cluster.db.query<Fire>(
				"SELECT fireTime, outcome, node, claimedAt, firedAt FROM job_fires WHERE jobId = ? ORDER BY fireTime",
				[jobId]
			)
		).map(r => ({
			...r,
			fireTime: Number(r.fireTime),
			claimedAt: Number(r.claimedAt),
			firedAt: r.firedAt === null ? null : Number(r.firedAt)
		}));
	return {
		figure: "scheduler replica killed → first fire by another",
		cluster: {
			name: "tern-failover-sched",
			nodes: [
				{ id: "core", services: [...REST_OF_CLUSTER, "dispatcher"] },
				...replicas.map(id => ({ id, services: ["scheduler"] }))
			]
		},
		parameters: { replicas: replicas.length, schedule: "* * * * * *", misfirePolicy: "skip (default)" },
		async prepare({ rest }) {
			await rest.registerTerminal(OFFLINE);
		},
		async rep(harness, n, log) {
			const { cluster, rest } = harness;
			const created = await rest.call<{ id: string }>("POST", "/api/jobs", {
				name: `failover-${n}`,
				schedule: { cron: "* * * * * *" },
				task: { terminalId: OFFLINE, type: "failover.tick" }
			});
			if (created.status !== 201) throw new Error(`create job: ${created.status} ${JSON.stringify(created.body)}`);
			jobId = created.body.id;
			// Its owner: the replica that fired its last three fire times.
			let rows: Fire[] = [];
			await waitUntil(
				async () => {
					rows = (await fires(harness)).filter(r => r.firedAt !== null);
					const last = rows.slice(-3);
					return last.length === 3 && last.every(r => r.node === last[0].node);
				},
				15_000,
				() => `three fires of the job by one replica (have ${rows.map(r => r.node).join(", ")})`,
				100
			);
			const owner = rows[rows.length - 1].node;
			victim = owner;
			// Kill just after a fire is committed: the next fire time is ~700 ms away, so the victim
			// has no claim in flight.
			const seen = rows[rows.length - 1].fireTime;
			let lastFire = seen;
			await waitUntil(
				async () => {
					const next = (await fires(harness)).find(r => r.fireTime > seen && r.firedAt !== null);
					lastFire = next?.fireTime ?? seen;
					return next !== undefined;
				},
				5000,
				() => "the next fire",
				20
			);
			await sleep(Math.max(0, lastFire + 300 - Date.now()));
			const killedAt = Date.now();
			await cluster.node(owner).kill();
			log(`failover: scheduler rep ${n + 1}: killed ${owner}, ${killedAt - lastFire} ms after its fire of ${lastFire}`);
			let first: Fire | undefined;
			let claimed: Fire | undefined;
			await waitUntil(
				async () => {
					const after = (await fires(harness)).filter(r => r.node !== owner && r.claimedAt >= killedAt);
					claimed ??= after[0];
					return (first = after.find(r => r.firedAt !== null)) !== undefined;
				},
				TAKEOVER_LIMIT_MS,
				() => `a fire of the job by a replica other than ${owner}`,
				50
			);
			return {
				seconds: (first!.firedAt! - killedAt) / 1000,
				detail: {
					killed: owner,
					firedBy: first!.node,
					killedAfterItsFireMs: killedAt - lastFire,
					firstFire: {
						fireTimeFromKillMs: first!.fireTime - killedAt,
						claimedFromKillMs: first!.claimedAt - killedAt,
						outcome: first!.outcome,
						latenessMs: first!.firedAt! - first!.fireTime
					},
					firstClaimByAnother: claimed && {
						fireTimeFromKillMs: claimed.fireTime - killedAt,
						claimedFromKillMs: claimed.claimedAt - killedAt,
						outcome: claimed.outcome
					}
				}
			};
		},
		async cleanUp(harness) {
			if (jobId) await confirmed(`${harness.rest.url}/api/jobs/${jobId}`, "DELETE", undefined, harness.rest.token);
			jobId = null;
			if (victim) await restore(harness, victim);
			victim = null;
		},
		close() {}
	};
}

function gatewayFigure(count: number): Figure {
	let pool: { id: string; token: string }[] = [];
	let terminals: FailoverTerminal[] = [];
	return {
		figure: "gateway killed → its terminals reconnected and working",
		cluster: {
			name: "tern-failover-gw",
			nodes: [
				{ id: "core", services: [...REST_OF_CLUSTER, "dispatcher"] },
				{ id: "gw-1", services: ["gateway"] },
				{ id: "gw-2", services: ["gateway"] }
			]
		},
		parameters: { terminals: count, transport: "socket.io, both gateway URLs, next one on a drop" },
		async prepare({ rest }) {
			pool = await register(
				rest,
				Array.from({ length: count }, (_, i) => `gw-term-${i}`)
			);
		},
		async rep({ cluster, rest }, n, log) {
			const [gw1, gw2] = [cluster.node("gw-1"), cluster.node("gw-2")];
			terminals = pool.map(({ id, token }) => new FailoverTerminal(id, token, [gw1.url, gw2.url]));
			await inBatches(terminals, 32, t => t.start());
			let online = 0;
			await waitUntil(
				async () => {
					const view = await presence(rest);
					online = terminals.filter(t => view.get(t.id)?.nodeID === "gw-1").length;
					return online === terminals.length;
				},
				30_000,
				() => `every terminal online on gw-1 (${online} of ${terminals.length})`,
				100
			);
			const killedAt = Date.now();
			await gw1.kill();
			log(`failover: gateway rep ${n + 1}: killed gw-1 with ${terminals.length} terminals on it`);
			const taskOf = new Map<string, string>();
			const submitMs: number[] = [];
			// All at once: a submit may wait on a push to the dead gateway, and a pool of lanes would
			// hold the next terminals' tasks behind it.
			await inBatches(terminals, terminals.length, async t => {
				const sent = Date.now();
				taskOf.set(t.id, await submit(rest, { terminalId: t.id, type: "failover.gw", payload: { rep: n } }));
				submitMs.push(Date.now() - sent);
			});
			const submittedMs = Date.now() - killedAt;
			let working = 0;
			await waitUntil(
				() => (working = terminals.filter(t => t.completed.has(taskOf.get(t.id)!)).length) === terminals.length,
				TAKEOVER_LIMIT_MS,
				() => `every terminal to complete its task (${working} of ${terminals.length})`
			);
			const reconnected = terminals.map(t => t.connectAfter(killedAt));
			const elsewhere = reconnected.filter(c => c?.url === gw2.url).length;
			if (elsewhere !== terminals.length)
				throw new Error(`${elsewhere} of ${terminals.length} terminals reconnected to gw-2`);
			const reconnectMs = reconnected.map(c => c!.at - killedAt);
			const workingMs = terminals.map(t => t.completed.get(taskOf.get(t.id)!)! - killedAt);
			return {
				seconds: Math.max(...workingMs) / 1000,
				detail: {
					terminals: terminals.length,
					reconnectedMs: ms(reconnectMs),
					workingMs: ms(workingMs),
					submittedWithinMs: submittedMs,
					submitReplyMs: ms(submitMs)
				}
			};
		},
		async cleanUp(harness) {
			for (const t of terminals.splice(0)) t.close();
			await restore(harness, "gw-1");
			// The next repetition's sessions must not race the close of these.
			await waitUntil(
				async () => [...(await presence(harness.rest)).values()].every(t => t.status !== "online"),
				15_000,
				() => "every terminal offline",
				100
			);
		},
		close() {
			for (const t of terminals.splice(0)) t.close();
		}
	};
}

function dispatcherFigure(count: number, ackTimeoutS: number): Figure {
	const owned = new Map<string, string[]>();
	const terminals: FailoverTerminal[] = [];
	let victim: string | null = null;
	for (const owner of DISPATCHERS) {
		const ids: string[] = [];
		for (let i = 0; ids.length < count; i++)
			if (rendezvousOwner(`disp-term-${i}`, DISPATCHERS) === owner) ids.push(`disp-term-${i}`);
		owned.set(owner, ids);
	}
	interface TaskState {
		id: string;
		status: string;
		attempt: number;
		deadlineAt: number | null;
		finishedAt: number | null;
	}
	const states = async ({ cluster }: Harness, ids: string[]): Promise<TaskState[]> =>
		(
			await cluster.db.query<TaskState>("SELECT id, status, attempt, deadlineAt, finishedAt FROM tasks WHERE id IN (?)", [
				ids
			])
		).map(r => ({
			...r,
			deadlineAt: r.deadlineAt === null ? null : Number(r.deadlineAt),
			finishedAt: r.finishedAt === null ? null : Number(r.finishedAt)
		}));
	return {
		figure: "dispatcher killed → its claimed work taken over",
		cluster: {
			name: "tern-failover-disp",
			nodes: [
				{ id: "core", services: [...REST_OF_CLUSTER, "gateway"] },
				...DISPATCHERS.map(id => ({ id, services: ["dispatcher"] }))
			]
		},
		parameters: {
			terminalsOfTheVictim: count,
			work: "one task per terminal, DELIVERED, unacknowledged; its ack deadline 100 ms after the kill",
			ackTimeoutS
		},
		async prepare({ cluster, rest }) {
			const url = cluster.node("core").url;
			const all = await register(rest, [...owned.values()].flat());
			// Attempt 1 of a task is left unanswered: its redelivery is the takeover's work.
			for (const { id, token } of all) terminals.push(new FailoverTerminal(id, token, [url], task => task.attempt >= 2));
			await inBatches(terminals, 32, t => t.start());
		},
		async rep(harness, n, log) {
			const { cluster, rest } = harness;
			victim = DISPATCHERS[n % DISPATCHERS.length];
			const ids = owned.get(victim)!;
			const mine = terminals.filter(t => ids.includes(t.id));
			// All at once, so that the ack deadlines lie close together and all after the kill.
			const submittedAt = Date.now();
			const taskIds = await inBatches(mine, mine.length, t =>
				submit(rest, { terminalId: t.id, type: "failover.disp", payload: { rep: n }, ackTimeout: ackTimeoutS })
			);
			const wanted = new Set(taskIds);
			let delivered = 0;
			await waitUntil(
				() => (delivered = mine.filter(t => t.received.some(r => wanted.has(r.taskId))).length) === mine.length,
				10_000,
				() => `every task delivered (${delivered} of ${mine.length})`
			);
			const held = await states(harness, taskIds);
			const odd = held.filter(t => t.status !== "DELIVERED" || t.deadlineAt === null);
			if (odd.length > 0) {
				const got = mine.flatMap(t =>
					t.received.filter(r => wanted.has(r.taskId)).map(r => ({ ...r, at: r.at - submittedAt }))
				);
				throw new NotReady(
					`tasks not DELIVERED with a deadline: ${JSON.stringify(odd.slice(0, 3))}; received (ms after the submits): ${JSON.stringify(got.slice(0, 6))}`
				);
			}
			const deadlines = held.map(t => t.deadlineAt!);
			const killAt = Math.min(...deadlines) - 100;
			if (killAt < Date.now())
				throw new Error(`the ack timeout (${ackTimeoutS} s) passed before ${count} tasks were delivered: raise it`);
			await sleep(killAt - Date.now());
			const killedAt = Date.now();
			await cluster.node(victim).kill();
			log(`failover: dispatcher rep ${n + 1}: killed ${victim}, owner of ${mine.length} terminals holding a task each`);
			let done: TaskState[] = [];
			await waitUntil(
				async () =>
					(done = (await states(harness, taskIds)).filter(t => t.status === "COMPLETED")).length === taskIds.length,
				TAKEOVER_LIMIT_MS,
				() => `every task COMPLETED (${done.length} of ${taskIds.length})`,
				50
			);
			const completedMs = done.map(t => t.finishedAt! - killedAt);
			return {
				seconds: Math.max(...completedMs) / 1000,
				detail: {
					killed: victim,
					tasks: taskIds.length,
					ackDeadlinesAfterKillMs: { min: Math.min(...deadlines) - killedAt, max: Math.max(...deadlines) - killedAt },
					completedMs: ms(completedMs),
					attempts: [...new Set(done.map(t => t.attempt))].sort()
				}
			};
		},
		async cleanUp(harness) {
			if (victim) await restore(harness, victim);
			victim = null;
		},
		close() {
			for (const t of terminals.splice(0)) t.close();
		}
	};
}

/** Runs one figure on its own cluster; a repetition that fails is recorded, not fatal. */
async function measure(figure: Figure, options: Options): Promise<Row> {
	const values: number[] = [];
	const reps: Record<string, unknown>[] = [];
	const failures: string[] = [];
	/** Repetitions set up again because the state before the kill was not reached (kept in the detail). */
	const notReady: string[] = [];
	let durability = "innodb";
	const started = Date.now();
	const loadBefore = loadAverage();
	try {
		const harness = await startCluster(figure.cluster.name, figure.cluster.nodes);
		durability = harness.durability;
		options.log(`failover: ${figure.cluster.name} up in ${Date.now() - started} ms`);
		try {
			await figure.prepare(harness);
			for (let n = 0, tries = 0; n < options.reps;) {
				try {
					const rep = await figure.rep(harness, n, options.log);
					values.push(round(rep.seconds));
					reps.push({ seconds: round(rep.seconds), ...rep.detail });
					options.log(`failover: ${figure.figure}: ${round(rep.seconds)} s ${JSON.stringify(rep.detail)}`);
					n++;
					tries = 0;
				} catch (err) {
					if (err instanceof NotReady && ++tries < 3) {
						// The state the kill needs was not reached: nothing was measured; set it up again.
						notReady.push(`rep ${n + 1}: ${err.message}`);
						options.log(`failover: ${figure.figure}: rep ${n + 1} not ready, again: ${err.message}`);
					} else {
						failures.push(`rep ${n + 1}: ${(err as Error).message}`);
						options.log(`failover: ${figure.figure}: rep ${n + 1} FAILED: ${(err as Error).message}`);
						n++;
						tries = 0;
					}
				} finally {
					await figure.cleanUp(harness);
				}
			}
		} finally {
			figure.close();
			await harness.cluster.close();
		}
	} catch (err) {
		failures.push((err as Error).message);
		options.log(`failover: ${figure.figure}: FAILED: ${(err as Error).message}`);
	}
	return {
		section: "failover",
		system: "tern cluster",
		durability,
		figure: figure.figure,
		unit: "s",
		values,
		target: TARGET,
		detail: {
			...figure.parameters,
			nodes: figure.cluster.nodes.map(n => `${n.id}: ${n.services.join(",")}`),
			reps,
			...(failures.length > 0 ? { failures } : {}),
			...(notReady.length > 0 ? { notReady } : {}),
			wallSeconds: round((Date.now() - started) / 1000, 1),
			// Other work on the machine (2 cores here) stretches every figure.
			loadAverage: { before: loadBefore, after: loadAverage() }
		}
	};
}

export const run: Part = async options => {
	const figures = [
		schedulerFigure(),
		gatewayFigure(options.quick ? 10 : 150),
		dispatcherFigure(options.quick ? 10 : 50, options.quick ? 10 : 5)
	];
	const rows: Row[] = [];
	for (const figure of figures) rows.push(await measure(figure, options));
	return rows;
};

/** A row whose repetitions did not all end in a takeover. */
export function failed(row: Row): boolean {
	return Array.isArray(row.detail?.failures) && row.detail.failures.length > 0;
}

// ---------------------------------------------------------------- alone

if (import.meta.main) {
	const { values: args } = parseArgs({
		options: { quick: { type: "boolean", default: false }, reps: { type: "string" } },
		strict: true
	});
	const reps = args.reps === undefined ? (args.quick ? 1 : 5) : Number(args.reps);
	if (!Number.isInteger(reps) || reps < 1) {
		console.error(`--reps must be a whole number >= 1, got '${args.reps}'`);
		process.exit(2);
	}
	const rows = await run({ quick: args.quick, reps, log: line => console.error(line) });
	printRows(rows);
	for (const row of rows.filter(failed)) console.log(`FAILED: ${row.figure}: ${(row.detail!.failures as string[]).join("; ")}`);
	process.exit(rows.some(failed) ? 1 : 0);
}
