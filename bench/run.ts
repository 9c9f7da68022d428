/**
 * The benchmark suite, end to end: Tern beside its peers on this machine, in one run, printed as
 * one table and written as one JSON file.
 *
 *   npm run bench                 # the full run: ≥ 3 repetitions of everything (about an hour)
 *   npm run bench:quick           # seconds and small sizes, one repetition (CI runs it)
 *   npm run bench -- --only throughput,floors --reps 5
 *
 * Sections, in the order they run:
 *   floors      the machine's limits: fsync, raw mysql2 writes, NATS request-reply, Moleculer echo over
 *               NATS, raw ws push (bench/floors.ts) — so that each Tern figure reads as a fraction of them
 *   throughput  Tern embedded and cluster (bench/tern.ts), BullMQ and pg-boss (bench/peers.ts), and the
 *               ratios the targets name
 *   latency     Tern's open loops at 1,000 and 2,500 tasks/s (bench/tern.ts)
 *   terminals   socket.io terminals per gateway process, 10k/25k/50k (bench/gateway.ts)
 *   push        pushes with ack per second through one gateway (bench/gateway.ts)
 *   cron        lateness with 10,000 jobs (bench/cron.ts)
 *   failover    scheduler, gateway and dispatcher killed (bench/failover.ts)
 *
 * Writes bench/results/suite.json (full run) or bench/results/suite.quick.json, with the machine
 * description. Exits 1 when a part failed (a lost task, a takeover that never came); a figure short
 * of its target is reported, not a failure.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { median, meets, spread, type Options, type Part, type Row, type Section } from "./lib/cells.ts";
import { describeMachine, loadAverage } from "./lib/machine.ts";
import { round } from "./lib/stats.ts";
import { tableOf } from "./lib/report.ts";

const { values: args } = parseArgs({
	options: {
		quick: { type: "boolean", default: false },
		reps: { type: "string" },
		only: { type: "string" },
		out: { type: "string" },
		help: { type: "boolean", short: "h", default: false }
	},
	strict: true
});

if (args.help) {
	console.log(`Usage: node bench/run.ts [--quick] [--reps N] [--only section,…] [--out FILE]
  sections: floors, throughput, latency, terminals, push, cron, failover`);
	process.exit(0);
}

const quick = args.quick;
const reps = Number(args.reps ?? (quick ? 1 : 3));
if (!Number.isInteger(reps) || reps < 1) {
	console.error(`--reps must be a whole number >= 1, got '${args.reps}'`);
	process.exit(2);
}
const only = args.only ? new Set(args.only.split(",").map(s => s.trim())) : null;
const here = dirname(fileURLToPath(import.meta.url));
const outFile = args.out ?? join(here, "results", quick ? "suite.quick.json" : "suite.json");

/** Each part, the sections it fills, and where it lives (loaded only when it runs). */
const PARTS: { name: string; sections: Section[]; load: () => Promise<{ run: Part }> }[] = [
	{ name: "floors", sections: ["floors"], load: () => import("./floors.ts") },
	{ name: "tern", sections: ["throughput", "latency"], load: () => import("./tern.ts") },
	{ name: "peers", sections: ["throughput"], load: () => import("./peers.ts") },
	{ name: "gateway", sections: ["terminals", "push"], load: () => import("./gateway.ts") },
	{ name: "cron", sections: ["cron"], load: () => import("./cron.ts") },
	{ name: "failover", sections: ["failover"], load: () => import("./failover.ts") }
];

const log = (line: string) => console.error(line);
const options: Options = { quick, reps, log };
const loadBefore = loadAverage();
const started = Date.now();
const rows: Row[] = [];
const failures: { part: string; error: string }[] = [];
const timings: Record<string, number> = {};

for (const part of PARTS) {
	if (only && !part.sections.some(s => only.has(s)) && !only.has(part.name)) continue;
	const t0 = Date.now();
	log(`── ${part.name} (${part.sections.join(", ")})`);
	try {
		const { run } = await part.load();
		const got = await run(options);
		rows.push(...got.filter(row => !only || only.has(row.section) || only.has(part.name)));
	} catch (err) {
		const error = (err as Error).stack ?? String(err);
		failures.push({ part: part.name, error });
		log(`${part.name} failed: ${error}`);
	}
	timings[part.name] = round((Date.now() - t0) / 1000, 1);
	log(`── ${part.name} done in ${timings[part.name]} s`);
}

// A figure without a single value is a measurement that never came to an end (a takeover that never happened).
for (const row of rows)
	if (row.values.length === 0)
		failures.push({ part: row.section, error: `${row.system}: ${row.figure}: no repetition finished (see the detail)` });

// ---------------------------------------------------------------- the comparisons the targets name

const find = (system: string, figure: string, durability?: string) =>
	rows.find(
		r =>
			r.section === "throughput" &&
			r.system === system &&
			r.figure.startsWith(figure) &&
			(durability === undefined || r.durability.includes(durability))
	);
const ternCluster = find("tern cluster", "tasks/s");
const ratios: [string, Row | undefined, number][] = [
	["pg-boss", find("pg-boss", "tasks/s"), 2],
	["bullmq", find("bullmq", "tasks/s", "everysec"), 0.5]
];
for (const [peer, row, target] of ratios) {
	if (!ternCluster || !row) continue;
	// Per repetition where both have one; the peer's median otherwise.
	const peerMedian = median(row.values);
	rows.push({
		section: "throughput",
		system: `tern cluster / ${peer}`,
		durability: `${ternCluster.durability} vs ${row.durability}`,
		figure: "throughput ratio",
		unit: "×",
		values: ternCluster.values.map(v => round(v / peerMedian, 2)),
		...(quick ? {} : { target: { op: ">=" as const, value: target } }),
		detail: { peerTasksPerSecond: row.values, ternTasksPerSecond: ternCluster.values }
	});
}

// ---------------------------------------------------------------- report

const machine = describeMachine(loadBefore);
console.log("");
console.log(
	`Tern benchmark suite — ${quick ? "quick" : "full"} run, ${reps} repetition(s), ${round((Date.now() - started) / 60_000, 1)} min`
);
console.log(
	`${machine.cpus} × ${machine.cpuModel}, ${round(machine.totalMemoryMiB / 1024, 1)} GiB, node ${machine.node}, ${machine.os}`
);
if (loadBefore[0] > 0.5)
	console.log(`note: load average ${loadBefore.join(" ")} before the run: other work on the machine skews the figures`);
console.log("");
console.log(tableOf(rows));
console.log("");
console.log("median of the repetitions, their range beside it; met: the median against the target (2 cores, one machine)");
for (const f of failures) console.log(`FAILED: ${f.part}: ${f.error.split("\n")[0]}`);

mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
	outFile,
	JSON.stringify(
		{
			benchmark: "suite",
			quick,
			repetitions: reps,
			timestamp: new Date().toISOString(),
			machine,
			secondsByPart: timings,
			rows: rows.map(row => ({ ...row, ...spread(row.values), met: meets(row) })),
			failures
		},
		null,
		2
	) + "\n"
);
console.log(`results written to ${outFile}`);
process.exit(failures.length === 0 ? 0 : 1);
