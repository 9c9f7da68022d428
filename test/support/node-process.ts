/**
 * Tern as separate OS processes: each node a `node tern.ts` process with its own HTTP and health
 * ports, on the machine's NATS and a fresh MariaDB/MySQL database (dropped on close), in a
 * namespace of its own. The benchmark's cluster mode (bench/lib/cluster.ts) and the cluster test
 * suites (test/helpers/cluster.ts, which adds its clients) both build on this; the integration
 * tests on MySQL use its Database.
 *
 * Servers: TERN_TEST_NATS (default nats://127.0.0.1:4222) and TERN_TEST_MYSQL (default
 * mysql://root@127.0.0.1:3306).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mysql from "mysql2/promise";
import { freePort, reachable } from "./net.ts";
import { waitFor } from "./wait.ts";

export { freePort, reachable };

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const NATS_URL = process.env.TERN_TEST_NATS ?? "nats://127.0.0.1:4222";
export const MYSQL_SERVER = (process.env.TERN_TEST_MYSQL ?? "mysql://root@127.0.0.1:3306").replace(/\/+$/, "");

export interface NodeSpec {
	id: string;
	services: string[];
	/** This node's own environment on top of the cluster's; `{database}` in a value is the cluster database's name. */
	env?: Record<string, string>;
}

// ---------------------------------------------------------------- the database

/** A database on MYSQL_SERVER. */
export class Database {
	readonly name: string;
	/** DB_URI of the database. */
	readonly uri: string;

	constructor(name: string) {
		this.name = name;
		this.uri = `${MYSQL_SERVER}/${name}`;
	}

	/** Creates `<prefix>_<random>`. */
	static async create(prefix: string): Promise<Database> {
		const db = new Database(`${prefix}_${randomBytes(4).toString("hex")}`);
		await db.server(conn => conn.query(`CREATE DATABASE \`${db.name}\``));
		return db;
	}

	/** Rows of a query run in this database. */
	async query<T = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<T[]> {
		const conn = await mysql.createConnection({ uri: this.uri });
		try {
			const [rows] = await conn.query(sql, values);
			return rows as T[];
		} finally {
			await conn.end();
		}
	}

	async drop(): Promise<void> {
		await this.server(conn => conn.query(`DROP DATABASE IF EXISTS \`${this.name}\``));
	}

	private async server(work: (conn: mysql.Connection) => Promise<unknown>): Promise<void> {
		const conn = await mysql.createConnection({ uri: MYSQL_SERVER });
		try {
			await work(conn);
		} finally {
			await conn.end();
		}
	}
}

// ---------------------------------------------------------------- nodes

/** Nodes still running when this process exits (it failed hard) are killed with it. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
	for (const child of live) child.kill("SIGKILL");
});

export interface NodeOptions {
	/** Echo every line the process writes to stderr, prefixed with the node's id. */
	echo?: boolean;
	/** How long waitReady() waits unless told otherwise, ms. @defaultValue 60_000 */
	readyTimeoutMs?: number;
}

/** One node of a cluster: a `node tern.ts` process. */
export class NodeProcess {
	readonly id: string;
	readonly services: string[];
	readonly port: number;
	readonly healthPort: number;
	readonly url: string;
	private readonly env: NodeJS.ProcessEnv;
	private readonly options: NodeOptions;
	process: ChildProcess | null = null;
	/** The last lines the process wrote, for diagnostics. */
	readonly output: string[] = [];
	/** Lines logged at WARN or above. */
	warnings = 0;
	readonly warningSamples: string[] = [];
	private exited: Promise<void> = Promise.resolve();

	constructor(spec: NodeSpec, port: number, healthPort: number, env: NodeJS.ProcessEnv, options: NodeOptions = {}) {
		this.id = spec.id;
		this.services = spec.services;
		this.port = port;
		this.healthPort = healthPort;
		this.url = `http://127.0.0.1:${port}`;
		this.env = env;
		this.options = options;
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
				if (this.options.echo) process.stderr.write(`[${this.id}] ${line}\n`);
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

	async waitReady(timeoutMs = this.options.readyTimeoutMs ?? 60_000): Promise<void> {
		await waitFor(
			async () => {
				if (!this.running) throw new Error(`node ${this.id} exited:\n${this.output.slice(-30).join("\n")}`);
				return (await this.readiness()) === 200;
			},
			timeoutMs,
			() => `node ${this.id} to be ready:\n${this.output.slice(-20).join("\n")}`
		);
	}

	/** `kill -9`: no goodbye to the cluster, connections dropped by the OS. */
	async kill(): Promise<void> {
		if (!this.running) return;
		process.kill(this.pid, "SIGKILL");
		await this.exited;
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

export interface LaunchOptions {
	nodes: NodeSpec[];
	adminPassword: string;
	/** Extra environment of every node (LOGLEVEL, which is warn unless given; TERN_RATE_LIMIT, …). */
	env?: Record<string, string>;
	node?: NodeOptions;
}

/** Nodes in one namespace on one fresh database. Subclasses start it with launch(). */
export class ProcessCluster {
	readonly namespace: string;
	readonly nodes = new Map<string, NodeProcess>();
	/** Made by launch(). */
	db!: Database;
	private readonly name: string;
	private dataDir = "";

	/** `name`: prefix of the namespace and the database name. */
	protected constructor(name: string) {
		this.name = name;
		this.namespace = `${name}-${randomBytes(4).toString("hex")}`;
	}

	/**
	 * Creates the database, starts every node, waits until each is ready, then for `ready` when
	 * given. On failure what was started is stopped and the database dropped.
	 */
	protected async launch(options: LaunchOptions, ready?: () => Promise<void>): Promise<void> {
		try {
			// Nodes would wait for a NATS server that is not there rather than fail: say so at once.
			if (!(await reachable(NATS_URL))) throw new Error(`no NATS server answers at ${NATS_URL} (TERN_TEST_NATS)`);
			this.db = await Database.create(this.name.replace(/\W/g, "_"));
			this.dataDir = mkdtempSync(join(tmpdir(), "tern-cluster-"));
			// An explicit environment for what Tern reads: the caller's DB_URI, SERVICES, … must not leak in.
			const env: NodeJS.ProcessEnv = { ...process.env };
			// The child is a Tern node, not a test file.
			delete env.NODE_TEST_CONTEXT;
			Object.assign(env, {
				TRANSPORTER: NATS_URL,
				DB_URI: this.db.uri,
				JWT_SECRET: randomBytes(32).toString("base64url"),
				TERN_ADMIN_PASSWORD: options.adminPassword,
				NAMESPACE: this.namespace,
				TERN_DATA_DIR: this.dataDir,
				LOGLEVEL: process.env.TERN_BENCH_LOGLEVEL ?? "warn",
				...options.env
			});
			for (const spec of options.nodes) {
				const own = Object.entries(spec.env ?? {}).map(([key, value]) => [
					key,
					value.replaceAll("{database}", this.db.name)
				]);
				const nodeEnv = { ...env, ...Object.fromEntries(own) };
				this.nodes.set(spec.id, new NodeProcess(spec, await freePort(), await freePort(), nodeEnv, options.node));
			}
			for (const node of this.nodes.values()) node.start();
			await Promise.all([...this.nodes.values()].map(node => node.waitReady()));
			await ready?.();
		} catch (err) {
			await this.close();
			throw err;
		}
	}

	node(id: string): NodeProcess {
		const node = this.nodes.get(id);
		if (!node) throw new Error(`no node ${id}`);
		return node;
	}

	/** Nodes running `service`. */
	running(service: string): NodeProcess[] {
		return [...this.nodes.values()].filter(n => n.services.includes(service));
	}

	/** Stops every node (SIGTERM, then SIGKILL), drops the database, removes the data dir. */
	async close(): Promise<void> {
		await Promise.all([...this.nodes.values()].map(node => node.stop()));
		if (this.db) await this.db.drop();
		if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
	}
}
