/**
 * Tern's peers, for the throughput comparison: BullMQ (Redis) and pg-boss (PostgreSQL) through the
 * full lifecycle of a job, on this machine, with the same closed loop.
 *
 *   npm exec -- node bench/peers.ts                # 20,000 jobs per rep after a warm-up, 3 reps
 *   npm exec -- node bench/peers.ts --quick        # 1,000 jobs, 1 rep: for CI (< 20 s)
 *   npm exec -- node bench/peers.ts --reps 5
 *
 * The loop: a producer keeps WINDOW jobs outstanding (added, not yet completed), adding them in
 * batches of 100 as completions come in; workers whose concurrency sums to 1,000 (the equivalent
 * of Tern's 1,000 terminals) take them and return a small result at once, which the queue stores
 * as the job's completion. Payload: 100 bytes. Producer and workers share this process.
 *
 * - BullMQ on a private redis-server started here (free port, temporary dir, AOF on, no RDB
 *   snapshots), once with `appendfsync everysec` and once with `appendfsync always`, killed and
 *   its dir removed at the end. One Worker of concurrency 1,000; `queue.addBulk` of 100; a job
 *   counts when the worker's `completed` event fires (after moveToFinished). removeOnComplete is
 *   left unset, BullMQ's default: every completed job stays in Redis with its result, as a Tern
 *   task stays in its table.
 * - pg-boss on the local PostgreSQL, in a fresh database (dropped at the end), every connection
 *   with `synchronous_commit=on` (verified, with `fsync`, and reported). `insert` of 100 jobs;
 *   `work` with batchSize 100 × localConcurrency 10, burstWhenBatchFull and LISTEN/NOTIFY so
 *   that no worker sits out a polling interval while jobs wait. pg-boss has no completion event:
 *   a job counts when its batch handler returns, and each rep ends only once the database has
 *   no job of the queue left in created, retry or active state (every job COMPLETED).
 *
 * CPU per task: this process (process.cpuUsage, every thread) plus the server's processes from
 * /proc/<pid>/stat — the redis-server, or every process named `postgres` (the postmaster, its
 * background workers and the backends). Kernel work done outside them (the filesystem journal)
 * is not counted.
 *
 * Servers: TERN_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432); `redis-server` on
 * the PATH.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { PgBoss } from "pg-boss";
import { median, type Options, type Part, type Row } from "./lib/cells.ts";
import { pidsNamed, processCpuUs } from "./lib/cluster.ts";
import { freePort } from "../test/support/node-process.ts";
import { round } from "./lib/stats.ts";
import { printRows } from "./lib/report.ts";

export const POSTGRES_SERVER = (process.env.TERN_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432").replace(/\/+$/, "");

/** Workers' concurrency, summed: the equivalent of 1,000 terminals. */
const CONCURRENCY = 1000;
/** Jobs outstanding (added, not completed): enough that no worker slot waits for the producer. */
const WINDOW = 2 * CONCURRENCY;
/** Jobs per addBulk / insert. */
const BATCH = 100;
/** Jobs per pg-boss fetch; CONCURRENCY / PG_BATCH workers. */
const PG_BATCH = 100;
/** BullMQ Worker instances, sharing CONCURRENCY. */
const BULLMQ_WORKERS = 1;
const PAYLOAD = randomBytes(75).toString("base64"); // 100 characters

export const DURABILITY = {
	everysec: "redis appendfsync everysec",
	always: "redis appendfsync always",
	postgres: "postgres synchronous_commit=on"
} as const;

interface Sizes {
	warmup: number;
	jobs: number;
}

function sizes(options: Options): Sizes {
	return options.quick ? { warmup: 300, jobs: 1000 } : { warmup: 2000, jobs: 20_000 };
}

// ---------------------------------------------------------------- the closed loop

/**
 * `total` jobs with at most `window` outstanding: `add(n)` enqueues n jobs (several adds may be
 * in flight at once), the caller reports completions with `done(n)`. Resolves with the elapsed ms
 * once every job has been reported.
 */
class ClosedLoop {
	private readonly total: number;
	private readonly add: (n: number) => Promise<unknown>;
	private added = 0;
	private completed = 0;
	private started = 0;
	private settle: { resolve: (ms: number) => void; reject: (err: unknown) => void } | null = null;

	constructor(total: number, add: (n: number) => Promise<unknown>) {
		this.total = total;
		this.add = add;
	}

	run(): Promise<number> {
		return new Promise((resolve, reject) => {
			this.settle = { resolve, reject };
			this.started = performance.now();
			this.fill();
		});
	}

	done(n: number): void {
		if (!this.settle) return; // a straggler of an earlier loop
		this.completed += n;
		if (this.completed >= this.total) {
			const { resolve } = this.settle;
			this.settle = null;
			resolve(performance.now() - this.started);
		} else this.fill();
	}

	private fill(): void {
		while (this.added < this.total && this.added - this.completed <= WINDOW - BATCH) {
			const n = Math.min(BATCH, this.total - this.added);
			this.added += n;
			this.add(n).catch(err => this.settle?.reject(err));
		}
	}
}

// ---------------------------------------------------------------- measuring a rep

interface Rep {
	tasks: number;
	ms: number;
	/** CPU µs spent during the rep, by process. */
	cpuUs: Record<string, number>;
}

/** CPU time of this process and of `servers` (by pid, read when asked), for a before/after difference. */
function cpuSnapshot(servers: () => number[]): { self: NodeJS.CpuUsage; servers: Map<number, number> } {
	const byPid = new Map<number, number>();
	for (const pid of servers()) byPid.set(pid, processCpuUs(pid) ?? 0);
	return { self: process.cpuUsage(), servers: byPid };
}

function cpuSince(before: ReturnType<typeof cpuSnapshot>, servers: () => number[], serverName: string): Record<string, number> {
	const self = process.cpuUsage(before.self);
	let server = 0;
	// A process that started during the rep counts from zero; one that ended is lost (rare: pooled connections).
	for (const pid of servers()) server += (processCpuUs(pid) ?? 0) - (before.servers.get(pid) ?? 0);
	return { "bench process (producer + workers)": self.user + self.system, [serverName]: server };
}

async function measure(
	options: Options,
	label: string,
	size: Sizes,
	servers: () => number[],
	serverName: string,
	loop: (total: number) => Promise<number>
): Promise<Rep[]> {
	options.log(`${label}: warm-up, ${size.warmup} jobs`);
	await loop(size.warmup);
	const reps: Rep[] = [];
	for (let rep = 1; rep <= options.reps; rep++) {
		const before = cpuSnapshot(servers);
		const ms = await loop(size.jobs);
		const cpuUs = cpuSince(before, servers, serverName);
		reps.push({ tasks: size.jobs, ms, cpuUs });
		options.log(
			`${label}: rep ${rep}/${options.reps}, ${size.jobs} jobs in ${Math.round(ms)} ms = ${Math.round((size.jobs * 1000) / ms)}/s`
		);
	}
	return reps;
}

function rowsOf(system: string, durability: string, reps: Rep[], detail: Record<string, unknown>): Row[] {
	const processes = Object.keys(reps[0]?.cpuUs ?? {});
	const perTask = (rep: Rep, name: string) => round(rep.cpuUs[name] / rep.tasks, 1);
	return [
		{
			section: "throughput",
			system,
			durability,
			figure: "tasks/s",
			unit: "tasks/s",
			values: reps.map(rep => round((rep.tasks * 1000) / rep.ms, 1)),
			detail: { ...detail, tasksPerRep: reps[0]?.tasks, msPerRep: reps.map(rep => round(rep.ms, 1)) }
		},
		{
			section: "throughput",
			system,
			durability,
			figure: "CPU µs/task, all processes",
			unit: "µs/task",
			values: reps.map(rep => round(Object.values(rep.cpuUs).reduce((a, b) => a + b, 0) / rep.tasks, 1)),
			detail: { perProcess: Object.fromEntries(processes.map(name => [name, reps.map(rep => perTask(rep, name))])) }
		}
	];
}

// ---------------------------------------------------------------- BullMQ

/** Kills the private servers if this process dies without cleaning up. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
	for (const child of live) child.kill("SIGKILL");
});

function portOpen(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = connect({ host: "127.0.0.1", port });
		const done = (open: boolean) => {
			socket.destroy();
			resolve(open);
		};
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}

interface RedisServer {
	port: number;
	pid: number;
	config: Record<string, string>;
	/** Fields of INFO persistence (aof_rewrites, aof_current_size, …). */
	persistence(): Promise<Record<string, string>>;
	stop(): Promise<void>;
}

/** A redis-server of our own: AOF with the given fsync policy, no RDB snapshots, in a temporary dir. */
async function startRedis(appendfsync: "everysec" | "always"): Promise<RedisServer> {
	const dir = mkdtempSync(join(tmpdir(), "tern-bench-redis-"));
	const port = await freePort();
	const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes"];
	args.push("--appendfsync", appendfsync, "--save", "", "--protected-mode", "no", "--loglevel", "warning");
	const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
	live.add(child);
	let stderr = "";
	child.stderr!.on("data", chunk => (stderr += chunk));
	const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
	const stop = async () => {
		if (child.exitCode === null && child.signalCode === null) {
			child.kill("SIGKILL");
			await exited;
		}
		live.delete(child);
		rmSync(dir, { recursive: true, force: true });
	};
	try {
		const deadline = Date.now() + 10_000;
		while (!(await portOpen(port))) {
			if (child.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
			if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}: ${stderr}`);
			await new Promise(resolve => setTimeout(resolve, 20));
		}
		const client = new Redis({ host: "127.0.0.1", port });
		const config: Record<string, string> = {};
		for (const key of ["appendonly", "appendfsync", "save"]) {
			const [, value] = (await client.config("GET", key)) as string[];
			config[key] = value;
		}
		config.version = /redis_version:(\S+)/.exec(await client.info("server"))?.[1] ?? "";
		client.disconnect();
		const persistence = async () => {
			const info = new Redis({ host: "127.0.0.1", port });
			try {
				const text = await info.info("persistence");
				return Object.fromEntries(text.split("\r\n").flatMap(line => (line.includes(":") ? [line.split(":", 2)] : [])));
			} finally {
				info.disconnect();
			}
		};
		return { port, pid: child.pid!, config, persistence, stop };
	} catch (err) {
		await stop();
		throw err;
	}
}

/** BullMQ on a private Redis with AOF and the given fsync policy. */
export async function runBullmq(options: Options, appendfsync: "everysec" | "always"): Promise<Row[]> {
	const size = sizes(options);
	const redis = await startRedis(appendfsync);
	const connection = { host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null };
	const name = "bench";
	const queue = new Queue(name, { connection });
	let loop: ClosedLoop | null = null;
	// No removeOnComplete: BullMQ's default keeps every completed job.
	const failures: string[] = [];
	const workers = Array.from({ length: BULLMQ_WORKERS }, () => {
		const worker = new Worker(name, async () => ({ ok: true }), { connection, concurrency: CONCURRENCY / BULLMQ_WORKERS });
		worker.on("completed", () => loop?.done(1));
		worker.on("failed", (_job, err) => failures.length < 5 && failures.push(err.message));
		return worker;
	});
	try {
		await Promise.all(workers.map(worker => worker.waitUntilReady()));
		const jobs = Array.from({ length: BATCH }, () => ({ name: "task", data: { payload: PAYLOAD } }));
		const run = (total: number) => {
			loop = new ClosedLoop(total, n => queue.addBulk(n === BATCH ? jobs : jobs.slice(0, n)));
			return loop.run();
		};
		const reps = await measure(options, `bullmq ${appendfsync}`, size, () => [redis.pid], "redis-server", run);
		if (failures.length > 0) throw new Error(`bullmq: jobs failed: ${failures.join("; ")}`);
		const counts = await queue.getJobCounts("completed", "failed", "active", "wait");
		const { aof_rewrites, aof_current_size } = await redis.persistence();
		const detail = {
			concurrency: CONCURRENCY,
			window: WINDOW,
			addBulk: BATCH,
			removeOnComplete: "unset (keep all)",
			workers: BULLMQ_WORKERS,
			redis: redis.config,
			jobCountsAtEnd: counts,
			// BGREWRITEAOF runs when the AOF doubles past 64 MB (Redis's default), during a rep or not.
			aofRewrites: Number(aof_rewrites),
			aofBytesAtEnd: Number(aof_current_size)
		};
		return rowsOf("bullmq", DURABILITY[appendfsync], reps, detail);
	} finally {
		await Promise.all(workers.map(worker => worker.close()));
		await queue.close();
		await redis.stop();
	}
}

// ---------------------------------------------------------------- pg-boss

async function onServer<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
	const client = new pg.Client({ connectionString: `${POSTGRES_SERVER}/${database}` });
	await client.connect();
	try {
		return await work(client);
	} finally {
		await client.end();
	}
}

/** pg-boss on a fresh database of the local PostgreSQL, with synchronous_commit=on. */
export async function runPgBoss(options: Options): Promise<Row[]> {
	const size = sizes(options);
	const database = `tern_bench_pgboss_${randomBytes(4).toString("hex")}`;
	await onServer("postgres", client => client.query(`CREATE DATABASE ${database}`));
	const workers = CONCURRENCY / PG_BATCH;
	const boss = new PgBoss({
		connectionString: `${POSTGRES_SERVER}/${database}`,
		options: "-c synchronous_commit=on",
		// One connection per worker, a few for the producer and LISTEN/NOTIFY.
		max: workers + 6,
		useListenNotify: true,
		schedule: false
	});
	const errors: string[] = [];
	boss.on("error", err => errors.length < 5 && errors.push(err.message));
	try {
		await boss.start();
		const db = boss.getDb();
		const setting = async (name: string) => String((await db.executeSql(`SHOW ${name}`)).rows[0][name]);
		const server = {
			synchronous_commit: await setting("synchronous_commit"),
			fsync: await setting("fsync"),
			wal_sync_method: await setting("wal_sync_method"),
			version: await setting("server_version")
		};
		if (server.synchronous_commit !== "on") throw new Error(`pg-boss: synchronous_commit is ${server.synchronous_commit}`);
		const name = "bench";
		await boss.createQueue(name, { notify: true, retryLimit: 0 });
		let loop: ClosedLoop | null = null;
		await boss.work(
			name,
			{ batchSize: PG_BATCH, localConcurrency: workers, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true },
			async jobs => {
				loop?.done(jobs.length);
				return { ok: true };
			}
		);
		const jobs = Array.from({ length: BATCH }, () => ({ data: { payload: PAYLOAD } }));
		const unsettled = async () =>
			Number(
				(
					await db.executeSql(
						`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
						[name]
					)
				).rows[0].n
			);
		const run = async (total: number) => {
			loop = new ClosedLoop(total, n => boss.insert(name, n === BATCH ? jobs : jobs.slice(0, n)));
			const ms = await loop.run();
			// Handlers have returned; the rep ends when their completions are committed.
			const started = performance.now();
			while ((await unsettled()) > 0) await new Promise(resolve => setTimeout(resolve, 5));
			return ms + (performance.now() - started);
		};
		const reps = await measure(options, "pg-boss", size, () => pidsNamed("postgres"), "postgres (all processes)", run);
		if (errors.length > 0) throw new Error(`pg-boss: ${errors.join("; ")}`);
		const states = (
			await db.executeSql(`SELECT state, count(*)::int AS n FROM pgboss.job WHERE name = $1 GROUP BY state`, [name])
		).rows;
		const detail = {
			concurrency: CONCURRENCY,
			window: WINDOW,
			insert: BATCH,
			batchSize: PG_BATCH,
			localConcurrency: workers,
			server,
			jobStatesAtEnd: Object.fromEntries(states.map(row => [row.state, row.n]))
		};
		return rowsOf("pg-boss", DURABILITY.postgres, reps, detail);
	} finally {
		await boss.stop({ graceful: false }).catch(() => undefined);
		await onServer("postgres", client => client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
	}
}

// ---------------------------------------------------------------- the part

export const run: Part = async options => [
	...(await runBullmq(options, "everysec")),
	...(await runBullmq(options, "always")),
	...(await runPgBoss(options))
];

/** The median tasks/s of one peer among `rows` (by system, and durability when given); NaN when absent. */
export function peerTasksPerSecond(rows: Row[], system: string, durability?: string): number {
	const row = rows.find(r => r.figure === "tasks/s" && r.system === system && (!durability || r.durability === durability));
	return row ? median(row.values) : Number.NaN;
}

if (import.meta.main) {
	const { values: args } = parseArgs({
		options: { quick: { type: "boolean", default: false }, reps: { type: "string" } },
		strict: true
	});
	const options: Options = {
		quick: args.quick,
		reps: args.reps ? Number(args.reps) : args.quick ? 1 : 3,
		log: line => process.stderr.write(`${line}\n`)
	};
	const rows = await run(options);
	printRows(rows);
	process.exit(0);
}
