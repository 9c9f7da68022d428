/**
 * The machine's limits, measured in the same run as the rest of the suite: what Tern's figures
 * are to be read against.
 *
 *   npm exec -- node bench/floors.ts               # ~5 s per floor and rep, 3 reps
 *   npm exec -- node bench/floors.ts --quick       # ~1 s per floor, 1 rep: for CI
 *
 * - fsync: 512-byte writes, each followed by fdatasync, cycling through a preallocated 1 MiB
 *   file (as a database log is written) in the OS temp dir; again in MariaDB's data dir when that
 *   is on another filesystem and this process may write there.
 * - MariaDB through mysql2, a fresh database with a table shaped like a small task row: 4
 *   connections each committing transactions of a 100-row INSERT then an UPDATE of those rows by
 *   id (rows/s, a row inserted and updated once = 1); and the same rows with no batching, each
 *   INSERT and UPDATE its own autocommit (writes/s), which is why Tern batches. Run with
 *   innodb_flush_log_at_trx_commit=1: when the server has another value it is set for the run and
 *   restored.
 * - NATS request-reply: a responder in a child process, this process keeping 256 requests of
 *   100 bytes in flight; once as a publish with a reply subject under one inbox subscription (the
 *   protocol's request-reply, as Moleculer's transporter uses it), once through nats.js's
 *   `request()`, which is several times slower on the client.
 * - Moleculer echo over NATS: a broker in a child process with an `echo` action, one here
 *   (namespace of its own, JSON serializer) keeping 256 calls in flight.
 * - WebSocket push: a `ws` server here, its clients in a child process; the server keeps 4
 *   pushes in flight per client, each client acks each push.
 *
 * The children are bench/lib/echo-node.ts. Latency p99 (ms) and the CPU µs per operation of each
 * process (this one, the child, the server's) are in each row's detail.
 *
 * Servers: TERN_TEST_NATS (default nats://127.0.0.1:4222), TERN_TEST_MYSQL (default
 * mysql://root@127.0.0.1:3306).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ServiceBroker } from "moleculer";
import mysql from "mysql2/promise";
import { connect as natsConnect, createInbox } from "nats";
import { WebSocketServer, type WebSocket } from "ws";
import type { Options, Part, Row } from "./lib/cells.ts";
import { processCpuUs, serverPids } from "./lib/cluster.ts";
import { Database, NATS_URL } from "../test/support/node-process.ts";
import { uuidv7 } from "../lib/ids.ts";
import { round, summarize } from "./lib/stats.ts";
import { printRows } from "./lib/report.ts";

const ECHO_NODE = fileURLToPath(new URL("./lib/echo-node.ts", import.meta.url));
const PAYLOAD = randomBytes(75).toString("base64"); // 100 characters
const IN_FLIGHT = 256;

interface Timing {
	/** Measured time per rep and warm-up, ms. */
	repMs: number;
	warmupMs: number;
}

function timing(options: Options): Timing {
	return options.quick ? { repMs: 1000, warmupMs: 250 } : { repMs: 5000, warmupMs: 1000 };
}

// ---------------------------------------------------------------- measuring

interface Sample {
	/** Operations done (rows, requests, pushes …). */
	count: number;
	ms: number;
	/** Latency of each operation (or batch), ms. */
	latencies: number[];
	/** CPU µs spent during the sample, by process. */
	cpuUs: Record<string, number>;
}

/** Processes whose CPU time a floor counts, besides this one: name → pids (read when asked). */
type Watched = Record<string, () => number[]>;

function cpuOf(watched: Watched): Map<string, number> {
	const cpu = new Map<string, number>();
	for (const [name, pids] of Object.entries(watched))
		cpu.set(
			name,
			pids().reduce((sum, pid) => sum + (processCpuUs(pid) ?? 0), 0)
		);
	return cpu;
}

/**
 * Runs `op` from `concurrency` loops for `ms`, each loop starting its next operation when the
 * last ends; `op` is told its loop's number and resolves with the operations it did (a batch
 * may count for many).
 */
async function saturate(
	concurrency: number,
	ms: number,
	watched: Watched,
	op: (loop: number) => Promise<number>
): Promise<Sample> {
	const self = process.cpuUsage();
	const before = cpuOf(watched);
	const latencies: number[] = [];
	let count = 0;
	const started = performance.now();
	const deadline = started + ms;
	await Promise.all(
		Array.from({ length: concurrency }, async (_, loop) => {
			while (performance.now() < deadline) {
				const t = performance.now();
				const done = await op(loop); // not `count += await …`: that reads count before the await
				count += done;
				latencies.push(performance.now() - t);
			}
		})
	);
	const elapsed = performance.now() - started;
	return { count, ms: elapsed, latencies, cpuUs: cpuSince(self, before, watched) };
}

function cpuSince(self: NodeJS.CpuUsage, before: Map<string, number>, watched: Watched): Record<string, number> {
	const mine = process.cpuUsage(self);
	const after = cpuOf(watched);
	const cpuUs: Record<string, number> = { "bench process": mine.user + mine.system };
	for (const [name, value] of after) cpuUs[name] = value - (before.get(name) ?? 0);
	return cpuUs;
}

/** Warm-up, then `reps` samples. */
async function sampled(options: Options, label: string, take: (ms: number) => Promise<Sample>): Promise<Sample[]> {
	const { repMs, warmupMs } = timing(options);
	await take(warmupMs);
	const samples: Sample[] = [];
	for (let rep = 1; rep <= options.reps; rep++) {
		const sample = await take(repMs);
		samples.push(sample);
		options.log(`${label}: rep ${rep}/${options.reps}, ${Math.round((sample.count * 1000) / sample.ms)}/s`);
	}
	return samples;
}

function rowOf(
	system: string,
	durability: string,
	figure: string,
	unit: string,
	samples: Sample[],
	detail: Record<string, unknown> = {}
): Row {
	const names = Object.keys(samples[0]?.cpuUs ?? {});
	return {
		section: "floors",
		system,
		durability,
		figure,
		unit,
		values: samples.map(s => round((s.count * 1000) / s.ms, 1)),
		detail: {
			...detail,
			latencyMs: samples.map(s => summarize(s.latencies)),
			cpuUsPerOp: Object.fromEntries(names.map(name => [name, samples.map(s => round(s.cpuUs[name] / s.count, 2))]))
		}
	};
}

// ---------------------------------------------------------------- fsync

const FSYNC_FILE = 1 << 20;
const FSYNC_WRITE = 512;

/** 512-byte writes + fdatasync at cycling offsets of a preallocated file at `path`. */
function fsyncSample(path: string, ms: number): Sample {
	const fd = openSync(path, "w+");
	try {
		writeSync(fd, Buffer.alloc(FSYNC_FILE));
		fsyncSync(fd);
		const block = Buffer.alloc(FSYNC_WRITE, 1);
		const latencies: number[] = [];
		const self = process.cpuUsage();
		const started = performance.now();
		const deadline = started + ms;
		let offset = 0;
		for (let now = started; now < deadline;) {
			writeSync(fd, block, 0, FSYNC_WRITE, offset);
			fdatasyncSync(fd);
			offset = (offset + FSYNC_WRITE) % FSYNC_FILE;
			const end = performance.now();
			latencies.push(end - now);
			now = end;
		}
		const cpu = process.cpuUsage(self);
		return {
			count: latencies.length,
			ms: performance.now() - started,
			latencies,
			cpuUs: { "bench process": cpu.user + cpu.system }
		};
	} finally {
		closeSync(fd);
	}
}

async function fsyncRows(options: Options, mariadbDataDir: string | null): Promise<Row[]> {
	const rows: Row[] = [];
	const dir = mkdtempSync(join(tmpdir(), "tern-bench-fsync-"));
	try {
		const samples = await sampled(options, "fsync (temp dir)", async ms => fsyncSample(join(dir, "log"), ms));
		rows.push(rowOf("fs (temp dir)", "fdatasync", "fsync/s, 512 B writes", "fsync/s", samples, { writeBytes: FSYNC_WRITE }));
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
	if (mariadbDataDir) {
		let sameFs: boolean | null = null;
		try {
			sameFs = statSync(mariadbDataDir).dev === statSync(tmpdir()).dev;
		} catch {
			options.log("fsync: MariaDB's data dir cannot be read from here, skipped");
		}
		rows[0].detail = { ...rows[0].detail, sameFilesystemAsMariadb: sameFs };
		if (sameFs === false) {
			// A plain file at the top of the data dir: MariaDB takes only directories there for databases.
			const path = join(mariadbDataDir, `tern-bench-fsync-${randomBytes(4).toString("hex")}.tmp`);
			try {
				const samples = await sampled(options, "fsync (MariaDB data dir)", async ms => fsyncSample(path, ms));
				rows.push(rowOf("fs (mariadb datadir)", "fdatasync", "fsync/s, 512 B writes", "fsync/s", samples));
			} catch (err) {
				options.log(`fsync: cannot write in MariaDB's data dir, skipped (${(err as Error).message})`);
			} finally {
				rmSync(path, { force: true });
			}
		}
	}
	return rows;
}

// ---------------------------------------------------------------- MariaDB

const MYSQL_CONNECTIONS = 4;
const MYSQL_BATCH = 100;

async function mariadbRows(options: Options): Promise<{ rows: Row[]; dataDir: string | null }> {
	const db = await Database.create("tern_bench_floor");
	const conns: mysql.Connection[] = [];
	let restoreFlush: string | null = null;
	try {
		for (let i = 0; i < MYSQL_CONNECTIONS; i++) conns.push(await mysql.createConnection({ uri: db.uri }));
		const [conn] = conns;
		const variable = async (name: string) => {
			const [rows] = await conn.query(`SELECT @@GLOBAL.${name} AS v`);
			return String((rows as { v: unknown }[])[0].v);
		};
		const flush = await variable("innodb_flush_log_at_trx_commit");
		if (flush !== "1") {
			options.log(`mariadb: innodb_flush_log_at_trx_commit is ${flush}, set to 1 for the run`);
			await conn.query("SET GLOBAL innodb_flush_log_at_trx_commit = 1");
			restoreFlush = flush;
		}
		const server = {
			innodb_flush_log_at_trx_commit: flush,
			flushDuringRun: await variable("innodb_flush_log_at_trx_commit"),
			log_bin: await variable("log_bin"),
			sync_binlog: await variable("sync_binlog"),
			innodb_flush_method: await variable("innodb_flush_method"),
			version: await variable("version")
		};
		const dataDir = await variable("datadir");
		await conn.query(`CREATE TABLE tasks (
			id VARCHAR(36) NOT NULL PRIMARY KEY,
			status VARCHAR(16) NOT NULL,
			payload VARCHAR(255) NOT NULL,
			createdAt DATETIME(3) NOT NULL,
			updatedAt DATETIME(3) NOT NULL
		) ENGINE=InnoDB`);
		// Time-ordered ids, as Tern's task ids.
		const ids = (n: number) => Array.from({ length: n }, () => uuidv7());
		let deadlocks = 0;
		const watched: Watched = { mariadbd: () => serverPids().database.pids };

		// One loop per connection: a transaction keeps to its connection.
		const batched = async (loop: number) => {
			const c = conns[loop];
			for (;;) {
				const batch = ids(MYSQL_BATCH);
				const now = new Date();
				try {
					await c.beginTransaction();
					await c.query("INSERT INTO tasks (id, status, payload, createdAt, updatedAt) VALUES ?", [
						batch.map(id => [id, "QUEUED", PAYLOAD, now, now])
					]);
					await c.query("UPDATE tasks SET status = 'COMPLETED', updatedAt = ? WHERE id IN (?)", [new Date(), batch]);
					await c.commit();
					return MYSQL_BATCH;
				} catch (err) {
					if ((err as { code?: string }).code !== "ER_LOCK_DEADLOCK") throw err;
					deadlocks++;
					await c.rollback();
				}
			}
		};
		const single = async (loop: number) => {
			const c = conns[loop];
			const [id] = ids(1);
			const now = new Date();
			await c.query("INSERT INTO tasks (id, status, payload, createdAt, updatedAt) VALUES (?, 'QUEUED', ?, ?, ?)", [
				id,
				PAYLOAD,
				now,
				now
			]);
			await c.query("UPDATE tasks SET status = 'COMPLETED', updatedAt = ? WHERE id = ?", [new Date(), id]);
			return 2;
		};
		const batchedSamples = await sampled(options, "mariadb batched", ms => saturate(MYSQL_CONNECTIONS, ms, watched, batched));
		const singleSamples = await sampled(options, "mariadb single-row autocommit", ms =>
			saturate(MYSQL_CONNECTIONS, ms, watched, single)
		);
		const common = { server, connections: MYSQL_CONNECTIONS };
		return {
			dataDir,
			rows: [
				rowOf(
					"mariadb",
					"innodb flush=1",
					`batched insert+update rows/s (${MYSQL_BATCH}/txn)`,
					"rows/s",
					batchedSamples,
					{
						...common,
						rowsPerTransaction: MYSQL_BATCH,
						deadlocksRetried: deadlocks,
						note: "latency is per transaction; a row is inserted and updated once"
					}
				),
				rowOf("mariadb", "innodb flush=1", "single-row autocommit writes/s", "writes/s", singleSamples, {
					...common,
					note: "each INSERT and each UPDATE its own commit; latency is per row (both writes)",
					rowsPerSecond: singleSamples.map(s => round((s.count * 500) / s.ms, 1))
				})
			]
		};
	} finally {
		if (restoreFlush !== null && conns[0])
			await conns[0].query(`SET GLOBAL innodb_flush_log_at_trx_commit = ${Number(restoreFlush)}`);
		await Promise.all(conns.map(c => c.end()));
		await db.drop();
	}
}

// ---------------------------------------------------------------- NATS, Moleculer, ws

interface Child {
	pid: number;
	stop(): Promise<void>;
}

/** bench/lib/echo-node.ts in `mode`, once it says it serves. */
function startChild(mode: "nats" | "moleculer" | "ws", url: string, arg: string): Promise<Child> {
	const child: ChildProcess = fork(ECHO_NODE, [mode, url, arg], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
	const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
	const stop = async () => {
		if (child.exitCode === null && child.signalCode === null) {
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
			await exited;
			clearTimeout(timer);
		}
	};
	return new Promise((resolve, reject) => {
		child.once("message", () => resolve({ pid: child.pid!, stop }));
		child.once("exit", code => reject(new Error(`echo-node ${mode} exited with code ${code} before it was ready`)));
	});
}

/**
 * Two ways to the same round trip: a publish with a reply subject under one inbox subscription,
 * replies matched by subject (what NATS request-reply is on the wire, and how Moleculer's NATS
 * transporter talks); and nats.js's `request()`, which costs the client much more per call.
 */
async function natsRows(options: Options): Promise<Row[]> {
	const subject = `tern.bench.echo.${randomBytes(4).toString("hex")}`;
	const child = await startChild("nats", NATS_URL, subject);
	const nc = await natsConnect({ servers: NATS_URL, name: "tern-bench-requester" });
	let sweeper: ReturnType<typeof setInterval> | undefined;
	try {
		const payload = new TextEncoder().encode(PAYLOAD);
		const watched: Watched = { "responder process": () => [child.pid], "nats-server": () => serverPids().nats.pids };
		const inbox = createInbox();
		const waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void; sentAt: number }>();
		nc.subscribe(`${inbox}.*`, {
			callback: (err, msg) => {
				if (err) return;
				waiting.get(msg.subject)?.resolve();
				waiting.delete(msg.subject);
			}
		});
		// Core NATS is at most once: a reply lost (a server restart, a slow consumer) fails the floor, as a
		// request() TIMEOUT does, rather than hang it.
		sweeper = setInterval(() => {
			for (const [reply, pending] of waiting)
				if (performance.now() - pending.sentAt > 10_000) {
					waiting.delete(reply);
					pending.reject(new Error(`nats: no reply to a request within 10 s (${reply})`));
				}
		}, 1000);
		let seq = 0;
		const published = await sampled(options, "nats request-reply (publish + inbox)", ms =>
			saturate(IN_FLIGHT, ms, watched, async () => {
				const reply = `${inbox}.${seq++}`;
				await new Promise<void>((resolve, reject) => {
					waiting.set(reply, { resolve, reject, sentAt: performance.now() });
					nc.publish(subject, payload, { reply });
				});
				return 1;
			})
		);
		const requested = await sampled(options, "nats request-reply (nc.request)", ms =>
			saturate(IN_FLIGHT, ms, watched, async () => {
				await nc.request(subject, payload, { timeout: 10_000 });
				return 1;
			})
		);
		const detail = { inFlight: IN_FLIGHT, payloadBytes: payload.length, responder: "a child process, msg.respond(msg.data)" };
		return [
			rowOf("nats", "none (core NATS)", `request-reply/s, ${IN_FLIGHT} in flight`, "req/s", published, {
				...detail,
				how: "publish with a reply subject under one inbox subscription"
			}),
			rowOf("nats", "none (core NATS)", `nc.request()/s, ${IN_FLIGHT} in flight`, "req/s", requested, {
				...detail,
				how: "nats.js request() (muxed inbox, a timer per request)"
			})
		];
	} finally {
		clearInterval(sweeper);
		await nc.close();
		await child.stop();
	}
}

async function moleculerRow(options: Options): Promise<Row> {
	const namespace = `tern-bench-floor-${randomBytes(4).toString("hex")}`;
	const broker = new ServiceBroker({
		namespace,
		nodeID: `floor-caller-${process.pid}`,
		transporter: { type: "NATS", options: { url: NATS_URL } },
		serializer: "JSON",
		// A lost call fails the floor rather than hang it.
		requestTimeout: 10_000,
		logger: false
	});
	await broker.start();
	let child: Child | null = null;
	try {
		child = await startChild("moleculer", NATS_URL, namespace);
		await broker.waitForServices("echo", 15_000);
		const pid = child.pid;
		const watched: Watched = { "echo broker process": () => [pid], "nats-server": () => serverPids().nats.pids };
		const params = { payload: PAYLOAD };
		const samples = await sampled(options, "moleculer echo", ms =>
			saturate(IN_FLIGHT, ms, watched, async () => {
				await broker.call("echo.echo", params);
				return 1;
			})
		);
		return rowOf("moleculer over nats", "none", `echo calls/s, ${IN_FLIGHT} in flight`, "calls/s", samples, {
			inFlight: IN_FLIGHT,
			serializer: "JSON",
			payloadBytes: PAYLOAD.length
		});
	} finally {
		await broker.stop();
		await child?.stop();
	}
}

/** Pushes in flight per client. */
const WS_WINDOW = 4;

async function wsRow(options: Options): Promise<Row> {
	const clients = options.quick ? 20 : 100;
	const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
	await new Promise(resolve => wss.once("listening", resolve));
	const { port } = wss.address() as { port: number };
	const sentAt = new Map<number, number>();
	let nextId = 0;
	let sending = false;
	let acks = 0;
	let latencies: number[] = [];
	let drained: (() => void) | null = null;
	const push = (socket: WebSocket) => {
		const id = nextId++;
		sentAt.set(id, performance.now());
		socket.send(`{"id":${id},"type":"task","payload":"${PAYLOAD}"}`);
	};
	wss.on("connection", socket => {
		socket.on("message", data => {
			const { ack } = JSON.parse(String(data)) as { ack: number };
			const now = performance.now();
			latencies.push(now - sentAt.get(ack)!);
			sentAt.delete(ack);
			acks++;
			if (sending) push(socket);
			else if (sentAt.size === 0) drained?.();
		});
	});
	let child: Child | null = null;
	try {
		child = await startChild("ws", `ws://127.0.0.1:${port}`, String(clients));
		const pid = child.pid;
		const watched: Watched = { "clients process": () => [pid] };
		const take = async (ms: number): Promise<Sample> => {
			const self = process.cpuUsage();
			const before = cpuOf(watched);
			acks = 0;
			latencies = [];
			sending = true;
			const started = performance.now();
			for (const socket of wss.clients) for (let i = 0; i < WS_WINDOW; i++) push(socket);
			await new Promise(resolve => setTimeout(resolve, ms));
			sending = false;
			const sample: Sample = {
				count: acks,
				ms: performance.now() - started,
				latencies,
				cpuUs: cpuSince(self, before, watched)
			};
			// Let the pushes still in flight come back before the next sample.
			if (sentAt.size > 0)
				await new Promise<void>((resolve, reject) => {
					const timer = setTimeout(() => reject(new Error(`ws: ${sentAt.size} pushes not acked within 10 s`)), 10_000);
					drained = () => {
						clearTimeout(timer);
						resolve();
					};
				});
			drained = null;
			return sample;
		};
		const samples = await sampled(options, "ws push", take);
		return rowOf("ws", "none", `pushes+acks/s, ${clients} clients`, "pushes/s", samples, {
			clients,
			inFlightPerClient: WS_WINDOW
		});
	} finally {
		await child?.stop();
		for (const socket of wss.clients) socket.terminate();
		await new Promise(resolve => wss.close(resolve));
	}
}

// ---------------------------------------------------------------- the part

const FLOORS = ["mariadb", "fsync", "nats", "moleculer", "ws"] as const;
type Floor = (typeof FLOORS)[number];

/** The floors in `only` (default: all), in the table's order. */
export async function runFloors(options: Options, only: readonly Floor[] = FLOORS): Promise<Row[]> {
	const rows: Row[] = [];
	let dataDir: string | null = null;
	if (only.includes("mariadb")) {
		const mariadb = await mariadbRows(options);
		dataDir = mariadb.dataDir;
		rows.push(...mariadb.rows);
	}
	if (only.includes("fsync")) rows.unshift(...(await fsyncRows(options, dataDir)));
	if (only.includes("nats")) rows.push(...(await natsRows(options)));
	if (only.includes("moleculer")) rows.push(await moleculerRow(options));
	if (only.includes("ws")) rows.push(await wsRow(options));
	return rows;
}

export const run: Part = options => runFloors(options);

if (import.meta.main) {
	const { values: args } = parseArgs({
		options: { quick: { type: "boolean", default: false }, reps: { type: "string" }, only: { type: "string" } },
		strict: true
	});
	const options: Options = {
		quick: args.quick,
		reps: args.reps ? Number(args.reps) : args.quick ? 1 : 3,
		log: line => process.stderr.write(`${line}\n`)
	};
	const only = args.only ? (args.only.split(",") as Floor[]) : FLOORS;
	const unknown = only.filter(name => !FLOORS.includes(name));
	if (unknown.length > 0) throw new Error(`unknown floor ${unknown.join(", ")}; floors: ${FLOORS.join(", ")}`);
	const rows = await runFloors(options, only);
	printRows(rows);
	process.exit(0);
}
