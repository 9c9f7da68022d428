/**
 * The journal of degraded mode, and its replay into the database. A record is one write as the
 * dispatcher meant it (an insert, a compare-and-set, a key freed, an output line), not SQL, so
 * the replay can make each idempotent: an insert skips a task whose id is already there, a change
 * applies only to a row still in the state it expected and no newer than the change, an output
 * line is appended only once per (task, attempt, time, text). Replayed twice — a crash during the
 * replay — a record changes nothing the second time, so each change lands exactly once.
 */
import type { TaskRow } from "../../models/task.model.ts";
import type { Journal } from "../../lib/journal.ts";
import type { SqlDriver, Statement } from "./sql.ts";
import { insertStatements, transitionStatement } from "./task-sql.ts";
import type { Expect } from "./transitions.ts";

export type JournalRecord =
	| { op: "insert"; rows: TaskRow[] }
	| { op: "change"; id: string; expect: Expect; changes: Partial<TaskRow> }
	| { op: "releaseKey"; id: string; key: string }
	| { op: "log"; taskId: string; attempt: number; stream: string; text: string; at: number; maxLines: number };

export interface ReplayCounts {
	/** Records read from the journal. */
	records: number;
	/** Statements that changed a row. */
	applied: number;
	/** Statements that found their change already made (or overtaken): nothing to do. */
	skipped: number;
	/** Statements the database refused (a key taken meanwhile by another replica). */
	conflicts: number;
	/** Bytes at the end of a segment cut short by a crash mid-write, left out. */
	discardedBytes: number;
}

export function emptyCounts(): ReplayCounts {
	return { records: 0, applied: 0, skipped: 0, conflicts: 0, discardedBytes: 0 };
}

/** Statements per transaction of the replay. */
const REPLAY_CHUNK = 500;

export function statementsOf(record: JournalRecord, dialect: "mysql" | "sqlite"): Statement[] {
	switch (record.op) {
		case "insert":
			return insertStatements(record.rows, dialect, true);
		case "change": {
			const at = record.changes.updatedAt;
			return [
				transitionStatement(dialect, record.id, record.expect, record.changes, at === undefined ? undefined : Number(at))
			];
		}
		case "releaseKey":
			return [
				{
					sql: "UPDATE tasks SET idempotencyKey = NULL WHERE id = ? AND idempotencyKey = ?",
					params: [record.id, record.key]
				}
			];
		case "log":
			return [
				{
					sql:
						"INSERT INTO task_logs (taskId, seq, attempt, stream, text, at) " +
						"SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM task_logs WHERE taskId = ? " +
						"HAVING COALESCE(MAX(seq), 0) < ? AND COALESCE(SUM(CASE WHEN attempt = ? AND at = ? AND text = ? THEN 1 ELSE 0 END), 0) = 0",
					params: [
						record.taskId,
						record.attempt,
						record.stream,
						record.text,
						record.at,
						record.taskId,
						record.maxLines,
						record.attempt,
						record.at,
						record.text
					]
				}
			];
	}
}

/**
 * Replays one segment, in order, a chunk per transaction, and removes it once all of it is in.
 * A storage fault stops it (the segment stays for the next try); the counts say what was done.
 */
export async function replaySegment(
	journal: Journal<JournalRecord>,
	segment: number,
	driver: SqlDriver,
	counts: ReplayCounts
): Promise<void> {
	const { records, discardedBytes } = await journal.read(segment);
	counts.discardedBytes += discardedBytes;
	const statements = records.flatMap(record => statementsOf(record, driver.dialect));
	for (let start = 0; start < statements.length; start += REPLAY_CHUNK) {
		const answers = await driver.batch(statements.slice(start, start + REPLAY_CHUNK));
		for (const answer of answers) {
			if (answer instanceof Error) counts.conflicts++;
			else if (answer > 0) counts.applied++;
			else counts.skipped++;
		}
	}
	counts.records += records.length;
	await journal.remove(segment);
}
