/**
 * A Tern cluster for the benchmark: the processes of test/support/node-process.ts (every node a
 * separate `node tern.ts` on the machine's NATS and a fresh MariaDB/MySQL database). Plus what
 * the benchmark reads from outside: each process's CPU time and resident memory from /proc, and
 * the pids of the database and NATS servers when they run on this machine.
 *
 * Servers: TERN_TEST_NATS (default nats://127.0.0.1:4222) and TERN_TEST_MYSQL (default
 * mysql://root@127.0.0.1:3306), as for the cluster test suite. TERN_BENCH_LOGS=1 echoes every
 * node's output.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { MYSQL_SERVER, NATS_URL, ProcessCluster, type LaunchOptions, type NodeSpec } from "../../test/support/node-process.ts";

export type { NodeSpec };

const ECHO_LOGS = process.env.TERN_BENCH_LOGS === "1";

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

// ---------------------------------------------------------------- the cluster

export interface ClusterOptions extends Omit<LaunchOptions, "node"> {
	/** Prefix of the namespace and the database name. */
	name: string;
}

export class BenchCluster extends ProcessCluster {
	/**
	 * Creates the database, starts every node and waits until each is ready. On failure what was
	 * started is stopped and the database dropped.
	 */
	static async start(options: ClusterOptions): Promise<BenchCluster> {
		const cluster = new BenchCluster(options.name);
		await cluster.launch({ ...options, node: { echo: ECHO_LOGS } });
		return cluster;
	}
}
