/**
 * The shared shape of the benchmark suite's results. Each part of `npm run bench` (throughput,
 * latency, gateway, push, cron, failover, floors, the peers) returns rows of this shape; the
 * runner (bench/run.ts) prints them as one table and writes them into one JSON file.
 */
import { round } from "./stats.ts";

/** The suite's sections, in the order the table prints them. */
export const SECTIONS = ["throughput", "latency", "terminals", "push", "cron", "failover", "floors"] as const;
export type Section = (typeof SECTIONS)[number];

/** One figure of one system, over repetitions. */
export interface Row {
	section: Section;
	/** Who was measured: "tern embedded", "tern cluster", "bullmq", "pg-boss", "mariadb", "nats", … */
	system: string;
	/** What makes a write durable there: "sqlite synchronous=FULL", "innodb flush=1", "appendfsync everysec", … */
	durability: string;
	/** What was measured, short: "tasks/s", "p99 submit→receive @1000/s", "RSS per terminal @50k", … */
	figure: string;
	unit: string;
	/** One value per repetition, in the unit. */
	values: number[];
	/** The target this figure is held to, if any: e.g. { op: ">=", value: 3000 }. */
	target?: { op: ">=" | "<="; value: number; note?: string };
	/** Anything else worth keeping in the JSON (CPU per process, counts, parameters). */
	detail?: Record<string, unknown>;
}

export interface Options {
	/** Seconds and small sizes, for CI: the suite must not rot. */
	quick: boolean;
	/** Repetitions of each measurement (≥ 3 for the full run). */
	reps: number;
	/** Progress lines go here (stderr), never into the table. */
	log: (line: string) => void;
}

/** A part of the suite: runs its measurements and returns its rows. */
export type Part = (options: Options) => Promise<Row[]>;

export function median(values: number[]): number {
	if (values.length === 0) return Number.NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const mid = sorted.length >> 1;
	return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function spread(values: number[]): { median: number; min: number; max: number } {
	return { median: round(median(values)), min: round(Math.min(...values)), max: round(Math.max(...values)) };
}

/** Whether a row meets its target (by its median); null when it has none. */
export function meets(row: Row): boolean | null {
	if (!row.target) return null;
	const m = median(row.values);
	return row.target.op === ">=" ? m >= row.target.value : m <= row.target.value;
}
