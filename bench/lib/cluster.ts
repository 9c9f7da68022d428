/**
 * A Tern cluster for the benchmark: every node a separate OS process (`node tern.ts`) on the
 * machine's NATS and a fresh MariaDB/MySQL database (dropped on close), in a namespace of its
 * own, each node with its own HTTP and health ports. Plus what the benchmark reads from
 * outside: each process's CPU time and resident memory from /proc, and the pids of the
 * database and NATS servers when they run on this machine.
 *
 * Servers: TERN_TEST_NATS (default nats://127.0.0.1:4222) and TERN_TEST_MYSQL (default
 * mysql://root@127.0.0.1:3306), as for the cluster test suite. TERN_BENCH_LOGS=1 echoes every
 * node's output.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mysql from "mysql2/promise";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const NATS_URL = process.env.TERN_TEST_NATS ?? "nats://127.0.0.1:4222";
export const MYSQL_SERVER = (process.env.TERN_TEST_MYSQL ?? "mysql://root@127.0.0.1:3306").replace(/\/+$/, "");
const ECHO_LOGS = process.env.TERN_BENCH_LOGS === "1";

export interface NodeSpec {
	id: string;
	services: string[];
}

/** A free TCP port (closed again at once; fine on one machine). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

/** Whether something accepts TCP connections at the host and port of `url`. */
function reachable(url: string, timeoutMs = 2000): Promise<boolean> {
	const { hostname, port } = new URL(url);
	return new Promise(resolve => {
		const socket = connect({ host: hostname.replace(/^\[|\]$/g, ""), port: Number(port) });
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(timeoutMs, () => done(false));
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
		await new Promise(resolve => setTimeout(resolve, 20));
	}
}

// ---------------------------------------------------------------- /proc

function getconf(name: string, fallback: number): number {
	try {
		const value = Number(execFileSync("getconf", [name], { encoding: "utf8" }).trim());
		return Number.isFinite(value) && value > 0 ? value : fallback;
	} catch {
		return fallback;
	}
}

/** Clock ticks per second of /proc/<pid>/stat's times. */
const CLK_TCK = getconf("CLK_TCK", 100);

/** User + system CPU time of a process (every thread, not its children), µs; null when it is gone. */
export function processCpuUs(pid: number): number | null {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name (field 2) is in parentheses and may hold spaces: count from its end.
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15: utime, stime
		return (ticks * 1e6) / CLK_TCK;
	} catch {
		return null;
	}
}

/** Resident set size of a process, bytes; null when it is gone. */
export function processRss(pid: number): number | null {
	try {
		const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
		return match ? Number(match[1]) * 1024 : null;
	} catch {
		return null;
	}
}

/** Pids of the processes named exactly `name` (pgrep -x); none when pgrep finds none or is missing. */
export function pidsNamed(name: string): number[] {
	try {
		return execFileSync("pgrep", ["-x", name], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
	} catch {
		return [];
	}
}

function isLocal(url: string): boolean {
	try {
		return ["127.0.0.1", "localhost", "[::1]", "::1"].includes(new URL(url).hostname);
	} catch {
		return false;
	}
}

/**
 * The database and NATS servers the cluster uses, when they run on this machine (their CPU time
 * counts for the cluster too). Empty lists when they are elsewhere or cannot be found.
 */
export function serverPids(): { database: { name: string; pids: number[] }; nats: { name: string; pids: number[] } } {
	let database = { name: "mariadbd", pids: [] as number[] };
	if (isLocal(MYSQL_SERVER))
		for (const name of ["mariadbd", "mysqld"]) {
			const pids = pidsNamed(name);
			if (pids.length > 0) {
				database = { name, pids };
				break;
			}
		}
	return { database, nats: { name: "nats-server", pids: isLocal(NATS_URL) ? pidsNamed("nats-server") : [] } };
}

// ---------------------------------------------------------------- nodes

/** Nodes still running when the benchmark exits (it failed hard) are killed with it. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
	for (const child of live) child.kill("SIGKILL");
});

/** One node of the cluster: a `node tern.ts` process. */
export class ClusterNode {
	readonly id: string;
	readonly services: string[];
	readonly port: number;
	readonly healthPort: number;
	readonly url: string;
	private readonly env: NodeJS.ProcessEnv;
	process: ChildProcess | null = null;
	/** The last lines the process wrote, for diagnostics. */
	readonly output: string[] = [];
	/** Lines logged at WARN or above. */
	warnings = 0;
	readonly warningSamples: string[] = [];
	private exited: Promise<void> = Promise.resolve();

	constructor(spec: NodeSpec, port: number, healthPort: number, env: NodeJS.ProcessEnv) {
		this.id = spec.id;
		this.services = spec.services;
		this.port = port;
		this.healthPort = healthPort;
		this.url = `http://127.0.0.1:${port}`;
		this.env = env;
	}

	get running(): boolean {
		return this.process !== null && this.process.exitCode === null && this.process.signalCode === null;
	}

	get pid(): number {
		if (!this.process?.pid) throw new Error(`node ${this.id} is not running`);
		return this.process.pid;
	}

	/** Starts the process (not waiting for readiness). */
	start(): void {
		if (this.running) throw new Error(`node ${this.id} is already running`);
		const child = spawn(process.execPath, ["tern.ts"], {
			cwd: ROOT,
			env: {
				...this.env,
				NODE_ID: this.id,
				SERVICES: this.services.join(","),
				PORT: String(this.port),
				HEALTH_PORT: String(this.healthPort)
			},
			stdio: ["ignore", "pipe", "pipe"]
		});
		this.process = child;
		live.add(child);
		const keep = (chunk: Buffer) => {
			for (const line of chunk.toString().split("\n")) {
				if (!line) continue;
				this.output.push(line);
				if (this.output.length > 300) this.output.shift();
				if (/\b(WARN|ERROR|FATAL)\b/.test(line)) {
					this.warnings++;
					if (this.warningSamples.length < 10) this.warningSamples.push(line.slice(0, 300));
				}
				if (ECHO_LOGS) process.stderr.write(`[${this.id}] ${line}\n`);
			}
		};
		child.stdout!.on("data", keep);
		child.stderr!.on("data", keep);
		this.exited = new Promise(resolve =>
			child.once("exit", (code, signal) => {
				live.delete(child);
				this.output.push(`-- exited (code ${code}, signal ${signal})`);
				resolve();
			})
		);
	}

	/** GET /healthz/ready: the status, 0 when nothing answers. */
	async readiness(): Promise<number> {
		try {
			const res = await fetch(`http://127.0.0.1:${this.healthPort}/healthz/ready`, { signal: AbortSignal.timeout(3000) });
			await res.text();
			return res.status;
		} catch {
			return 0;
		}
	}

	async waitReady(timeoutMs = 60_000): Promise<void> {
		await waitFor(
			async () => {
				if (!this.running) throw new Error(`node ${this.id} exited:\n${this.output.slice(-30).join("\n")}`);
				return (await this.readiness()) === 200;
			},
			timeoutMs,
			() => `node ${this.id} to be ready:\n${this.output.slice(-20).join("\n")}`
		);
	}

	/** SIGTERM, and SIGKILL if it has not stopped within `timeoutMs`. */
	async stop(timeoutMs = 10_000): Promise<void> {
		if (!this.running) return;
		process.kill(this.pid, "SIGTERM");
		const timer = setTimeout(() => this.running && process.kill(this.pid, "SIGKILL"), timeoutMs);
		await this.exited;
		clearTimeout(timer);
	}
}

// ---------------------------------------------------------------- the cluster

async function onServer(work: (conn: mysql.Connection) => Promise<unknown>): Promise<void> {
	const conn = await mysql.createConnection({ uri: MYSQL_SERVER });
	try {
		await work(conn);
	} finally {
		await conn.end();
	}
}

export interface ClusterOptions {
	/** Prefix of the namespace and the database name. */
	name: string;
	nodes: NodeSpec[];
	adminPassword: string;
	/** Extra environment of every node (LOGLEVEL, TERN_RATE_LIMIT, …). */
	env?: Record<string, string>;
}

export class BenchCluster {
	readonly namespace: string;
	readonly database: string;
	readonly nodes: ClusterNode[] = [];
	private readonly dataDir: string;
	private databaseCreated = false;

	private constructor(namespace: string, database: string) {
		this.namespace = namespace;
		this.database = database;
		this.dataDir = mkdtempSync(join(tmpdir(), "tern-bench-cluster-"));
	}

	/**
	 * Creates the database, starts every node and waits until each is ready. On failure what was
	 * started is stopped and the database dropped.
	 */
	static async start(options: ClusterOptions): Promise<BenchCluster> {
		const suffix = randomBytes(4).toString("hex");
		const cluster = new BenchCluster(`${options.name}-${suffix}`, `${options.name.replace(/\W/g, "_")}_${suffix}`);
		try {
			// Nodes would wait for a NATS server that is not there rather than fail: say so at once.
			if (!(await reachable(NATS_URL))) throw new Error(`no NATS server answers at ${NATS_URL} (TERN_TEST_NATS)`);
			await onServer(conn => conn.query(`CREATE DATABASE \`${cluster.database}\``));
			cluster.databaseCreated = true;
			// An explicit environment for what Tern reads: the caller's DB_URI, SERVICES, … must not leak in.
			const env: NodeJS.ProcessEnv = {
				...process.env,
				TRANSPORTER: NATS_URL,
				DB_URI: `${MYSQL_SERVER}/${cluster.database}`,
				JWT_SECRET: randomBytes(32).toString("base64url"),
				TERN_ADMIN_PASSWORD: options.adminPassword,
				NAMESPACE: cluster.namespace,
				TERN_DATA_DIR: cluster.dataDir,
				LOGLEVEL: "warn",
				...options.env
			};
			for (const spec of options.nodes) cluster.nodes.push(new ClusterNode(spec, await freePort(), await freePort(), env));
			for (const node of cluster.nodes) node.start();
			await Promise.all(cluster.nodes.map(node => node.waitReady()));
		} catch (err) {
			await cluster.close();
			throw err;
		}
		return cluster;
	}

	node(id: string): ClusterNode {
		const node = this.nodes.find(n => n.id === id);
		if (!node) throw new Error(`no node ${id}`);
		return node;
	}

	/** Nodes running `service`. */
	running(service: string): ClusterNode[] {
		return this.nodes.filter(n => n.services.includes(service));
	}

	/** Stops every node (SIGTERM, then SIGKILL), drops the database, removes the data dir. */
	async close(): Promise<void> {
		await Promise.all(this.nodes.map(node => node.stop()));
		if (this.databaseCreated) {
			await onServer(conn => conn.query(`DROP DATABASE IF EXISTS \`${this.database}\``));
			this.databaseCreated = false;
		}
		rmSync(this.dataDir, { recursive: true, force: true });
	}
}
