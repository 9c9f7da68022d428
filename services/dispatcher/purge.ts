/**
 * `POST /api/tasks/purge`: finished tasks older than a date, and their output, deleted. Only
 * final states may be purged, so nothing a terminal or a deadline still acts on goes; the first
 * call counts what would go (the second confirmation's summary), the confirmed one deletes it.
 */
import { FINAL_STATUSES, type TaskStatus } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { expand, type SqlDriver } from "./sql.ts";

export interface PurgeParams {
	/** ISO-8601: tasks that finished before it go. */
	before: string;
	/** The final states to purge; all of them when not given. */
	status?: TaskStatus[];
}

export const purgeParams = {
	before: { type: "string", min: 10, max: 40 },
	status: {
		type: "array",
		optional: true,
		min: 1,
		max: FINAL_STATUSES.size,
		unique: true,
		items: { type: "enum", values: [...FINAL_STATUSES] }
	},
	$$strict: true
};

export interface PurgeScope {
	before: number;
	statuses: TaskStatus[];
}

/** The params as a scope, or VALIDATION_ERROR naming `before` when it is not a date. */
export function purgeScope(params: PurgeParams): PurgeScope {
	const before = Date.parse(params.before);
	if (!/^\d{4}-\d{2}-\d{2}/.test(params.before) || !Number.isFinite(before))
		throw Errors.validation("'before' must be an ISO-8601 date", [
			{ field: "before", message: "'before' must be an ISO-8601 date", type: "date" }
		]);
	return { before, statuses: [...(params.status ?? [...FINAL_STATUSES])].sort() };
}

/** What a confirmation token is bound to: a token for one purge confirms no other. */
export function purgeObject(scope: PurgeScope): string {
	return `tasks:before=${new Date(scope.before).toISOString()};status=${scope.statuses.join(",")}`;
}

const WHERE = "status IN (?) AND finishedAt IS NOT NULL AND finishedAt < ?";

/** How many tasks the purge would delete. */
export async function countPurgeable(driver: SqlDriver, scope: PurgeScope): Promise<number> {
	const { sql, params } = expand(`SELECT COUNT(*) AS n FROM tasks WHERE ${WHERE}`, [scope.statuses, scope.before]);
	const [row] = await driver.select<{ n: number | string }>(sql, params);
	return Number(row?.n ?? 0);
}

/** Deletes the tasks in scope and their output lines, in one transaction; how many tasks went. */
export async function purgeTasks(driver: SqlDriver, scope: PurgeScope): Promise<number> {
	const values = [scope.statuses, scope.before];
	const [logs, tasks] = await driver.batch([
		expand(`DELETE FROM task_logs WHERE taskId IN (SELECT id FROM tasks WHERE ${WHERE})`, values),
		expand(`DELETE FROM tasks WHERE ${WHERE}`, values)
	]);
	if (logs instanceof Error) throw logs;
	if (tasks instanceof Error) throw tasks;
	return tasks ?? 0;
}
