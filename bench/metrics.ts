/**
 * What metrics cost: the lifecycle benchmark's embedded closed loop (bench/lifecycle.ts, same
 * workload: socket.io terminals, REST submits, each terminal acks and answers at once) run with
 * TERN_METRICS=on and =off, alternately, each run a child process of its own (a fresh Tern, a
 * fresh SQLite database). Target: metrics cost under 5 % of throughput.
 *
 *   node bench/metrics.ts [--reps N] [--tasks N] [--quick]
 *
 * Prints a table and writes bench/results/metrics.json (bench/results/metrics.tmp.json with --quick).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeMachine, loadAverage } from "./lib/machine.ts";
import { round, table } from "./lib/stats.ts";

const LIFECYCLE = fileURLToPath(new URL("./lifecycle.ts", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));

const { values: args } = parseArgs({
	options: {
		reps: { type: "string", default: "3" },
		tasks: { type: "string", default: "20000" },
		quick: { type: "boolean", default: false }
	}
});
const reps = Number(args.reps);
const tasks = args.quick ? 500 : Number(args.tasks);

/** One lifecycle run in embedded mode: its closed-loop throughput, tasks/s. */
async function runOnce(metrics: "on" | "off"): Promise<number> {
	const dir = mkdtempSync(join(tmpdir(), "tern-bench-metrics-"));
	const out = join(dir, "lifecycle.json");
	const child = spawn(
		process.execPath,
		[LIFECYCLE, "--mode", "embedded", "--metrics", metrics, "--tasks", String(tasks), "--seconds", "1", "--out", out],
		{ stdio: ["ignore", "ignore", "inherit"] }
	);
	const code = await new Promise<number>(resolve => child.once("exit", c => resolve(c ?? 1)));
	try {
		if (code !== 0) throw new Error(`lifecycle run with metrics ${metrics} exited ${code}`);
		const json = JSON.parse(readFileSync(out, "utf8")) as {
			results: { embedded: { figures: { throughputTasksPerSecond: number } } };
		};
		return json.results.embedded.figures.throughputTasksPerSecond;
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

const loadBefore = loadAverage();
const runs: Record<"on" | "off", number[]> = { on: [], off: [] };
for (let i = 0; i < reps; i++) {
	// Alternate, and swap who goes first each rep: a machine that slows down or speeds up over
	// the runs then weighs on both alike.
	const order: ("on" | "off")[] = i % 2 === 0 ? ["off", "on"] : ["on", "off"];
	for (const metrics of order) {
		const tps = await runOnce(metrics);
		runs[metrics].push(tps);
		console.error(`rep ${i + 1}/${reps}, metrics ${metrics}: ${round(tps, 0)} tasks/s`);
	}
}

const median = (xs: number[]) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const on = median(runs.on);
const off = median(runs.off);
const costPercent = ((off - on) / off) * 100;
console.log(
	table(
		["metrics", "runs (tasks/s)", "median tasks/s"],
		[
			["off", runs.off.map(x => round(x, 0)).join(", "), String(round(off, 0))],
			["on", runs.on.map(x => round(x, 0)).join(", "), String(round(on, 0))]
		]
	)
);
console.log(`metrics cost: ${round(costPercent, 1)} % of throughput (target: under 5 %)`);

mkdirSync(RESULTS, { recursive: true });
const file = join(RESULTS, args.quick ? "metrics.tmp.json" : "metrics.json");
writeFileSync(
	file,
	JSON.stringify(
		{
			benchmark: "metrics",
			timestamp: new Date().toISOString(),
			machine: describeMachine(loadBefore),
			parameters: { reps, tasks, mode: "embedded", workload: "bench/lifecycle.ts closed loop" },
			throughputTasksPerSecond: { off: runs.off, on: runs.on, medianOff: off, medianOn: on },
			costPercent: round(costPercent, 2),
			ok: costPercent < 5
		},
		null,
		2
	) + "\n"
);
console.log(`results written to ${file}`);
