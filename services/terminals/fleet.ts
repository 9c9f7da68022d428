/**
 * What the terminals service asks of the rest of Tern: presence, with each session's transport
 * (cache), task counts and cancellation (dispatcher). Each takes the caller's context, so
 * that the caller's rights travel with the call.
 */
import type { Context } from "moleculer";
import type { Presence } from "../../lib/contracts.ts";
import { call } from "../../lib/actions.ts";
import type { TaskCounts } from "./views.ts";

/** The states in which a task is on a terminal. */
const RUNNING = "DELIVERED,PROCESSING";

export async function presenceOf(ctx: Context, ids?: string[]): Promise<Map<string, Presence>> {
	const list = await call(ctx, "cache.presenceList", ids ? { terminalIds: ids } : {});
	return new Map(list.map(p => [p.terminalId, p]));
}

/** How many tasks a terminal holds (DELIVERED, PROCESSING). */
export async function runningCount(ctx: Context, terminalId: string): Promise<number> {
	return (await taskCounts(ctx, [terminalId])).get(terminalId)?.running ?? 0;
}

/** How many tasks each terminal holds (DELIVERED, PROCESSING) and has waiting (PENDING): one call. */
export async function taskCounts(ctx: Context, ids: string[]): Promise<Map<string, TaskCounts>> {
	if (ids.length === 0) return new Map();
	const counts = await call(ctx, "dispatcher.counts", { terminalIds: ids });
	return new Map(ids.map(id => [id, counts[id] ?? { running: 0, queued: 0 }]));
}

/**
 * Cancels every unfinished task submitted for this terminal by id (not the selector tasks it
 * happens to hold: those go back to the queue when its session closes, for another terminal).
 * Returns how many were cancelled.
 */
export async function cancelPinned(ctx: Context, terminalId: string): Promise<number> {
	const ids: string[] = [];
	for (let page = 1; ; page++) {
		const found = await call(ctx, "dispatcher.list", {
			terminalId,
			status: `PENDING,${RUNNING}`,
			page,
			pageSize: 500
		});
		for (const row of found.rows) if (row.selector === null) ids.push(row.taskId);
		if (page >= found.totalPages) break;
	}
	let cancelled = 0;
	for (const id of ids) {
		try {
			await call(ctx, "dispatcher.cancel", { id });
			cancelled++;
		} catch (err) {
			// Finished meanwhile: nothing left to cancel.
			if ((err as { type?: string }).type !== "TASK_FINISHED") throw err;
		}
	}
	return cancelled;
}
