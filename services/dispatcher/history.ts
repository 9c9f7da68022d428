/**
 * A task's state history: each change as one short JSON line, appended to the row's `history`
 * column by the same INSERT or UPDATE that makes the change — no other write, no other round
 * trip — and read back as `TaskTransition`s by `GET /api/tasks/:id`. A task has a few changes per
 * attempt, so the column stays small; the answer keeps the newest `MAX_HISTORY`.
 */
import type { TaskStatus, TaskTransition } from "../../lib/contracts.ts";

export const MAX_HISTORY = 100;
const MAX_REASON = 200;

interface Line {
	s: TaskStatus;
	a: number;
	t: number;
	id?: string;
	r?: string;
}

/** One change as the line to append (with its newline). */
export function historyLine(
	status: TaskStatus,
	attempt: number,
	at: number,
	terminalId?: string | null,
	reason?: string | null
): string {
	const line: Line = { s: status, a: attempt, t: at };
	if (terminalId) line.id = terminalId;
	if (reason) line.r = reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 1)}…` : reason;
	return `${JSON.stringify(line)}\n`;
}

/** The SQL that appends a line to `history` in this dialect (`||` is OR in MySQL). */
export function appendHistorySql(dialect: "mysql" | "sqlite"): string {
	return dialect === "mysql" ? "history = CONCAT(COALESCE(history, ''), ?)" : "history = COALESCE(history, '') || ?";
}

export function parseHistory(text: string | null | undefined): TaskTransition[] {
	if (!text) return [];
	const out: TaskTransition[] = [];
	for (const raw of text.split("\n").slice(-MAX_HISTORY - 1)) {
		if (!raw) continue;
		try {
			const line = JSON.parse(raw) as Line;
			out.push({
				status: line.s,
				attempt: line.a,
				at: new Date(line.t).toISOString(),
				terminalId: line.id ?? null,
				...(line.r ? { reason: line.r } : {})
			});
		} catch {
			// A line cut short cannot happen inside one UPDATE; skip rather than fail the read.
		}
	}
	return out.slice(-MAX_HISTORY);
}
