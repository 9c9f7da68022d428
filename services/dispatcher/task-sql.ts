/**
 * The SQL of the writes on every task's path, built in one place: the dispatcher's own commits
 * use it, and so does the replay of the degraded-mode journal, which asks for two guards more —
 * an insert that skips a task already there, and a change that skips a row already as new as it.
 * Column names in SQL come only from COLUMNS.
 */
import type { TaskRow } from "../../models/task.model.ts";
import { appendHistorySql, historyLine } from "./history.ts";
import type { Statement } from "./sql.ts";
import type { Expect } from "./transitions.ts";

/** Rows per INSERT statement: SQLite takes at most 32,766 parameters in one. */
const INSERT_ROWS = 500;

/** Why a change happened, when the row says: the error of a failure, a timeout, an expiry. */
function reasonOf(changes: Partial<TaskRow>): string | null {
	return typeof changes.error === "string" && changes.error !== "" ? changes.error : null;
}

/** Every column of `tasks`, in insert order; names in SQL come only from this list. */
export const COLUMNS = [
	"id",
	"status",
	"type",
	"payload",
	"target",
	"selector",
	"terminalId",
	"priority",
	"timeoutMs",
	"ackTimeoutMs",
	"ttlMs",
	"maxRetries",
	"retries",
	"backoff",
	"attempt",
	"deliveries",
	"idempotencyKey",
	"groupId",
	"shardIndex",
	"shardTotal",
	"output",
	"error",
	"exitCode",
	"progress",
	"createdBy",
	"createdAt",
	"updatedAt",
	"deliveredAt",
	"startedAt",
	"finishedAt",
	"expiresAt",
	"notBefore",
	"deadlineAt",
	"secrets",
	"history"
] as const satisfies readonly (keyof TaskRow)[];
const KNOWN: ReadonlySet<string> = new Set(COLUMNS);
/** Columns that may be NULL and have no other default (see the migrations). */
const NULLABLE: ReadonlySet<string> = new Set<(typeof COLUMNS)[number]>([
	"payload",
	"target",
	"selector",
	"terminalId",
	"backoff",
	"idempotencyKey",
	"groupId",
	"shardIndex",
	"shardTotal",
	"output",
	"error",
	"exitCode",
	"progress",
	"createdBy",
	"deliveredAt",
	"startedAt",
	"finishedAt",
	"expiresAt",
	"notBefore",
	"deadlineAt",
	"secrets",
	"history"
]);

/**
 * Multi-row INSERTs. Columns that are NULL in every row (and NULL by default) are left out.
 * `skipExisting`: a task whose id is already there is left as it is (the journal's replay).
 */
export function insertStatements(rows: TaskRow[], dialect?: "mysql" | "sqlite", skipExisting = false): Statement[] {
	const statements: Statement[] = [];
	for (const row of rows) row.history ??= historyLine(row.status, row.attempt, Number(row.updatedAt), row.terminalId);
	const verb = !skipExisting ? "INSERT INTO" : dialect === "mysql" ? "INSERT IGNORE INTO" : "INSERT OR IGNORE INTO";
	for (let start = 0; start < rows.length; start += INSERT_ROWS) {
		const chunk = rows.slice(start, start + INSERT_ROWS);
		const columns = COLUMNS.filter(column => !NULLABLE.has(column) || chunk.some(row => row[column] != null));
		const tuple = `(${columns.map(() => "?").join(", ")})`;
		const params: unknown[] = [];
		for (const row of chunk) for (const column of columns) params.push(row[column] ?? null);
		statements.push({
			sql: `${verb} tasks (${columns.join(", ")}) VALUES ${chunk.map(() => tuple).join(", ")}`,
			params
		});
	}
	return statements;
}

/**
 * The compare-and-set UPDATE: `changes` apply only if the task is still in `expect`. A change of
 * state is written to the task's history by the same statement. `notNewerThan`: the row must also
 * not have been changed after this time (the journal's replay: a change already applied is not
 * applied twice).
 */
export function transitionStatement(
	dialect: "mysql" | "sqlite",
	id: string,
	expect: Expect,
	changes: Partial<TaskRow>,
	notNewerThan?: number
): Statement {
	const columns = Object.keys(changes).filter(column => (changes as Record<string, unknown>)[column] !== undefined);
	for (const column of columns) if (!KNOWN.has(column)) throw new TypeError(`Unknown task column '${column}'`);
	const params: unknown[] = columns.map(column => (changes as Record<string, unknown>)[column] ?? null);
	const sets = columns.map(column => `${column} = ?`);
	if (changes.status !== undefined) {
		sets.push(appendHistorySql(dialect));
		const at = Number(changes.updatedAt ?? Date.now());
		params.push(
			historyLine(changes.status, changes.attempt ?? expect.attempt ?? 0, at, changes.terminalId, reasonOf(changes))
		);
	}
	params.push(id, Array.isArray(expect.status) ? expect.status : [expect.status]);
	let sql = `UPDATE tasks SET ${sets.join(", ")} WHERE id = ? AND status IN (?)`;
	if (expect.attempt !== undefined) {
		sql += " AND attempt = ?";
		params.push(expect.attempt);
	}
	if (notNewerThan !== undefined) {
		sql += " AND updatedAt <= ?";
		params.push(notNewerThan);
	}
	return { sql, params };
}
