/**
 * Tern's own rows of the suite, sections "throughput" and "latency": bench/lifecycle.ts run once
 * per mode, as a child process of its own (a fresh Tern, a fresh database), with the suite's
 * parameters — 1,000 socket.io terminals, 100-byte payloads, a closed loop of batched submits for
 * throughput and open loops of single submits at 1,000 and 2,500 tasks/s for latency — and its
 * JSON read back into rows.
 *
 *   node bench/tern.ts [--quick] [--reps N] [--mode embedded|cluster|both]
 *
 * Cluster mode runs twice: two processes with every service each ("tern cluster"), and six
 * processes with one role each ("tern cluster, a role per process", as the k8s manifests deploy).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Options, Part, Row } from "./lib/cells.ts";
import { printRows } from "./lib/report.ts";

const LIFECYCLE = fileURLToPath(new URL("./lifecycle.ts", import.meta.url));

type Mode = "embedded" | "cluster";
/**
 * How the cluster's services are spread: "full", two processes with every service each (the
 * cluster rows without a suffix); "roles", six processes with one role each, as the k8s manifests
 * deploy them.
 */
type Topology = "full" | "roles";

const SYSTEM: Record<string, string> = {
	embedded: "tern embedded",
	"cluster:full": "tern cluster",
	"cluster:roles": "tern cluster, a role per process"
};

const DURABILITY: Record<Mode, string> = {
	embedded: "sqlite WAL synchronous=NORMAL",
	cluster: "mariadb innodb_flush_log_at_trx_commit=1"
};

interface Summary {
	count: number;
	p50: number;
	p99: number;
	p999: number;
	max: number;
}

interface PhaseJson {
	phase: string;
	kind: "closed" | "open";
	tasks: number;
	completedOnServer: number;
	lost: number;
	tasksPerSecond: number;
	latencyMs: Record<string, Summary>;
	cpu: { allMsPerTask: number | null; ternMsPerTask: number | null; byProcess?: Record<string, { msPerTask: number | null }> };
	memory: { ternRssPeakMiB: number };
}

interface ModeJson {
	ok: boolean;
	failures: string[];
	phases: PhaseJson[];
	integrity: { duplicates: number; deliveries: number };
}

/** The parameters of a suite run of one mode. */
function argsFor(mode: Mode, topology: Topology, options: Options, out: string): string[] {
	const quick = options.quick;
	return [
		LIFECYCLE,
		"--mode",
		mode,
		"--topology",
		topology,
		"--terminals",
		String(quick ? 100 : 1000),
		"--terminal-concurrency",
		"4",
		"--tasks",
		String(quick ? 1000 : 20_000),
		"--warmup",
		String(quick ? 200 : 4000),
		"--batch",
		"100",
		"--window",
		String(quick ? 400 : 3000),
		"--concurrency",
		"8",
		"--reps",
		String(options.reps),
		"--rates",
		quick ? "200" : "1000,2500",
		"--seconds",
		String(quick ? 2 : 10),
		"--payload",
		"100",
		"--out",
		out
	];
}

function runChild(args: string[], log: (line: string) => void): Promise<number> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
		const relay = (chunk: Buffer) => {
			for (const line of chunk.toString().split("\n")) if (line.trim() && !/WARN|npm warn/.test(line)) log(`  ${line}`);
		};
		child.stdout.on("data", relay);
		child.stderr.on("data", relay);
		child.on("error", reject);
		child.on("exit", code => resolve(code ?? 1));
	});
}

function rowsOf(mode: Mode, topology: Topology, json: ModeJson, options: Options): Row[] {
	const system = SYSTEM[mode === "embedded" ? mode : `${mode}:${topology}`];
	const durability = DURABILITY[mode];
	const closed = json.phases.filter(p => p.kind === "closed" && p.phase !== "warmup");
	const rows: Row[] = [
		{
			section: "throughput",
			system,
			durability,
			figure: "tasks/s, submit→COMPLETED, closed loop",
			unit: "tasks/s",
			values: closed.map(p => p.tasksPerSecond),
			...(mode === "cluster" && !options.quick ? { target: { op: ">=" as const, value: 3000 } } : {}),
			detail: {
				terminals: options.quick ? 100 : 1000,
				batch: 100,
				lost: closed.map(p => p.lost),
				duplicates: json.integrity.duplicates,
				ternRssPeakMiB: closed.map(p => p.memory.ternRssPeakMiB)
			}
		},
		{
			section: "throughput",
			system,
			durability,
			figure: "CPU µs/task, all processes",
			unit: "µs",
			values: closed.map(p => Math.round((p.cpu.allMsPerTask ?? 0) * 1000)),
			detail: {
				ternMsPerTask: closed.map(p => p.cpu.ternMsPerTask),
				byProcess: closed.map(p =>
					Object.fromEntries(Object.entries(p.cpu.byProcess ?? {}).map(([id, v]) => [id, v.msPerTask]))
				)
			}
		}
	];
	const rates = [...new Set(json.phases.filter(p => p.kind === "open").map(p => /^open@(\d+)/.exec(p.phase)?.[1]))];
	for (const rate of rates) {
		const open = json.phases.filter(p => p.kind === "open" && /^open@(\d+)/.exec(p.phase)?.[1] === rate);
		const receive = open.map(p => p.latencyMs.intendedToReceive);
		const ack = open.map(p => p.latencyMs.ackToCompleted);
		const targets: Record<string, Record<string, number>> = { "1000": { p50: 2, p99: 10, p999: 25 }, "2500": { p99: 25 } };
		for (const q of ["p50", "p99", "p999", "max"] as const) {
			const target = options.quick ? undefined : targets[rate ?? ""]?.[q];
			rows.push({
				section: "latency",
				system,
				durability,
				figure: `${q === "p999" ? "p99.9" : q} intended submit→terminal receives @${rate}/s`,
				unit: "ms",
				values: receive.map(s => s[q]),
				...(target !== undefined ? { target: { op: "<=" as const, value: target } } : {}),
				detail: { achievedTasksPerSecond: open.map(p => p.tasksPerSecond), samples: receive.map(s => s.count) }
			});
		}
		for (const q of ["p50", "p99"] as const)
			rows.push({
				section: "latency",
				system,
				durability,
				figure: `${q} ack→durable COMPLETED @${rate}/s`,
				unit: "ms",
				values: ack.map(s => s[q])
			});
	}
	return rows;
}

export function runMode(mode: Mode, options: Options, topology: Topology = "full"): Promise<Row[]> {
	return (async () => {
		const dir = mkdtempSync(join(tmpdir(), "tern-suite-"));
		const out = join(dir, `${mode}.json`);
		try {
			options.log(
				`tern ${mode}${mode === "cluster" ? ` (${topology})` : ""}: lifecycle benchmark (${options.quick ? "quick" : "full"}, ${options.reps} rep(s))`
			);
			const code = await runChild(argsFor(mode, topology, options, out), options.log);
			let json: { results: Record<string, ModeJson> };
			try {
				json = JSON.parse(readFileSync(out, "utf8")) as { results: Record<string, ModeJson> };
			} catch {
				throw new Error(`tern ${mode}: the lifecycle benchmark exited ${code} without results`);
			}
			const result = json.results[mode];
			if (!result) throw new Error(`tern ${mode}: no results for the mode (exit ${code})`);
			if (!result.ok) throw new Error(`tern ${mode}: ${result.failures.join("; ")}`);
			return rowsOf(mode, topology, result, options);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	})();
}

export const run: Part = async options => [
	...(await runMode("embedded", options)),
	...(await runMode("cluster", options, "full")),
	...(await runMode("cluster", options, "roles"))
];

if (import.meta.main) {
	const { values } = parseArgs({
		options: {
			quick: { type: "boolean", default: false },
			reps: { type: "string" },
			mode: { type: "string", default: "both" }
		}
	});
	const quick = values.quick ?? false;
	const options: Options = { quick, reps: Number(values.reps ?? (quick ? 1 : 3)), log: line => console.error(line) };
	const rows: Row[] = [];
	if (values.mode !== "cluster") rows.push(...(await runMode("embedded", options)));
	if (values.mode !== "embedded") {
		rows.push(...(await runMode("cluster", options, "full")));
		rows.push(...(await runMode("cluster", options, "roles")));
	}
	printRows(rows);
}
