/**
 * The dispatcher's read actions: a task, a page of tasks, a task's output, and the counts other
 * services ask for (statuses for the scheduler, per-terminal counts for the terminal views, totals
 * for the monitor). None of them changes anything; each reads the store or the row cache.
 */
import type { Context, Service } from "moleculer";
import type { DispatcherStats, TaskQueryView, TaskView, TernMeta } from "../../lib/contracts.ts";
import { requireUser, requireUserOrSelf } from "../../lib/access.ts";
import { Errors } from "../../lib/errors.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { idRule, listParams, logsParams, taskIdRule, type ListParams, type LogsParams } from "./params.ts";
import type { DispatcherSettings } from "./settings.ts";
import { toQueryView, toView } from "./views.ts";
import { parseHistory } from "./history.ts";

type ReadsThis = Service<DispatcherSettings> & { dispatcher: Dispatcher };

export const readActions = {
	/** `GET /api/task/query?taskId=` → `{ taskId, status, data, error, attempt, timestamps }` */
	query: {
		params: { taskId: taskIdRule },
		async handler(this: ReadsThis, ctx: Context<{ taskId: string }, TernMeta>): Promise<TaskQueryView> {
			const row = await this.dispatcher.core.mustGet(ctx.params.taskId);
			requireUserOrSelf(ctx, row.terminalId ?? row.target, () => Errors.taskNotFound(row.id));
			return toQueryView(row);
		}
	},

	/** `GET /api/tasks/:id` → the whole task. */
	get: {
		params: { id: taskIdRule },
		async handler(this: ReadsThis, ctx: Context<{ id: string }, TernMeta>): Promise<TaskView> {
			const row = await this.dispatcher.core.mustGet(ctx.params.id);
			requireUserOrSelf(ctx, row.terminalId ?? row.target, () => Errors.taskNotFound(row.id));
			return { ...toView(row), history: parseHistory(row.history) };
		}
	},

	/** `GET /api/tasks` → `{ rows, total, page, pageSize, totalPages }`, newest first by default. */
	list: {
		params: listParams,
		async handler(this: ReadsThis, ctx: Context<ListParams, TernMeta>) {
			requireUser(ctx, "viewer");
			return this.dispatcher.list(ctx.params);
		}
	},

	/** `GET /api/tasks/:id/logs?after=` → `{ lines: [{ seq, attempt, stream, text, at }], next }` */
	logs: {
		params: logsParams,
		async handler(this: ReadsThis, ctx: Context<LogsParams, TernMeta>) {
			const row = await this.dispatcher.core.mustGet(ctx.params.id);
			requireUserOrSelf(ctx, row.terminalId ?? row.target, () => Errors.taskNotFound(row.id));
			return this.dispatcher.replies.logs(ctx.params.id, ctx.params.after ?? 0, ctx.params.limit ?? 1000);
		}
	},

	/** Statuses of many tasks at once, `{ [taskId]: status }` (unknown ids left out): the scheduler's start-up. */
	statuses: {
		visibility: "public" as const,
		params: { taskIds: { type: "array", max: 5000, items: taskIdRule } },
		async handler(this: ReadsThis, ctx: Context<{ taskIds: string[] }>): Promise<Record<string, string>> {
			return Object.fromEntries(await this.dispatcher.core.store.statuses(ctx.params.taskIds));
		}
	},

	/** `{ [terminalId]: { running, queued } }` for the terminal views: one query each, whatever the number of terminals. */
	counts: {
		visibility: "public" as const,
		params: { terminalIds: { type: "array", max: 5000, items: idRule } },
		async handler(this: ReadsThis, ctx: Context<{ terminalIds: string[] }>) {
			return Object.fromEntries(await this.dispatcher.core.store.countsFor(ctx.params.terminalIds));
		}
	},

	/** Counts by status and the oldest pending task: the status page, the monitor, the REPL (`call dispatcher.stats`). */
	stats: {
		visibility: "public" as const,
		async handler(this: ReadsThis): Promise<DispatcherStats> {
			const store = this.dispatcher.core.store;
			return { tasks: await store.countByStatus(), oldestPendingAt: await store.oldestPending() };
		}
	}
};
