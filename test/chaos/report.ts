/**
 * What the chaos suite reports: a row per fault, the checks that make a row, and the table,
 * printed and written to test/chaos/results/{quick,full}.{md,json}.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LoadTerminal } from "./steady.ts";

export interface Row {
	fault: string;
	submitted: number;
	completed: number;
	/** Accepted, and not in the database. */
	lost: number;
	/**
	 * Acked in two attempts, or given out again after its completion was confirmed; null where no
	 * terminal can tell (raw WebSocket terminals get no answer to an ack or a result).
	 */
	runTwice: number | null;
	/** Not final once its deadlines and a sweep had passed. */
	stuck: number;
	recoverSeconds: number;
	/** What the consistency check found and repaired after the fault. */
	repaired: number;
	/** Pushes the terminals dropped as already run (at-least-once delivery, deduplicated). */
	pushedAgain: number;
}

export const FINAL = new Set(["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

export type Seen = Map<string, { status: string }>;

/** The checks of a row over the tasks `ids`, as `seen` in the database, run by `terminals`. */
export function judge(
	ids: string[],
	seen: Seen,
	terminals: LoadTerminal[]
): Omit<Row, "fault" | "recoverSeconds" | "repaired" | "pushedAgain"> {
	const wanted = new Set(ids);
	const runsOf = new Map<string, number>();
	for (const t of terminals) for (const [id, n] of t.runs) if (wanted.has(id)) runsOf.set(id, (runsOf.get(id) ?? 0) + n);
	const afterDone = new Set(
		terminals.flatMap(t => t.duplicateCompletions.map(key => key.split("#")[0])).filter(id => wanted.has(id))
	);
	const twice = new Set([...[...runsOf].filter(([, n]) => n > 1).map(([id]) => id), ...afterDone]);
	return {
		submitted: ids.length,
		completed: ids.filter(id => seen.get(id)?.status === "COMPLETED").length,
		lost: ids.filter(id => !seen.has(id)).length,
		runTwice: twice.size,
		stuck: ids.filter(id => seen.has(id) && !FINAL.has(seen.get(id)!.status)).length
	};
}

/** Each task of `ids` run twice, and how: by which terminal, how many times, or after its completion. */
export function runTwiceDetail(ids: string[], terminals: LoadTerminal[]): { taskId: string; how: string }[] {
	const wanted = new Set(ids);
	const found: { taskId: string; how: string }[] = [];
	for (const t of terminals) {
		for (const [taskId, n] of t.runs)
			if (wanted.has(taskId) && n > 1) found.push({ taskId, how: `${t.id} acked ${n} attempts` });
		for (const key of t.duplicateCompletions) {
			const taskId = key.split("#")[0];
			if (wanted.has(taskId)) found.push({ taskId, how: `${key} pushed to ${t.id} after it completed` });
		}
	}
	return found;
}

export function table(rows: Row[]): string {
	const head =
		"| fault | submitted | completed | lost | run twice | stuck | fault → all completing again, s | repaired | pushed again, deduplicated |";
	const rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|";
	const lines = rows.map(
		r =>
			`| ${r.fault} | ${r.submitted} | ${r.completed} | ${r.lost} | ${r.runTwice ?? "–"} | ${r.stuck} | ${r.recoverSeconds} | ${r.repaired} | ${r.pushedAgain} |`
	);
	return [head, rule, ...lines].join("\n");
}

/** Prints the table and, when named, writes it, with the rows as JSON, to test/chaos/results/. */
export function publish(rows: Row[], name?: string): string {
	const text = table(rows);
	process.stdout.write(`\n${text}\n`);
	if (!name) return text;
	const out = fileURLToPath(new URL("results/", import.meta.url));
	mkdirSync(out, { recursive: true });
	writeFileSync(join(out, `${name}.json`), JSON.stringify({ at: new Date().toISOString(), rows }, null, "\t") + "\n");
	writeFileSync(join(out, `${name}.md`), `${text}\n`);
	return text;
}

export function failures(rows: Row[]): Row[] {
	return rows.filter(r => r.lost > 0 || (r.runTwice ?? 0) > 0 || r.stuck > 0);
}
