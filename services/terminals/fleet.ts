/**
 * What the terminals service asks of the rest of Tern: presence (cache), sessions' transports
 * (gateway), task counts and cancellation (dispatcher). Each takes the caller's context, so
 * that the caller's rights travel with the call.
 */
import type { Context } from "moleculer";
import type { Presence, TaskQueryView, TaskView } from "../../lib/contracts.ts";
import { readAll } from "../../lib/paging.ts";
import { transportName, type TaskCounts } from "./views.ts";

interface TaskPage {
	rows: TaskView[];
	total: number;
	totalPages: number;
}

interface ListQuery {
	terminalId: string;
	status: string;
	page?: number;
	pageSize?: number;
}

/** The states in which a task is on a terminal. */
const RUNNING = "DELIVERED,PROCESSING";
/** Parallel count queries when a list is shown. */
const COUNT_PARALLELISM = 8;

export async function presenceOf(ctx: Context, ids?: string[]): Promise<Map<string, Presence>> {
	const list = await ctx.call<Presence[], { terminalIds?: string[] }>("cache.presenceList", ids ? { terminalIds: ids } : {});
	return new Map(list.map(p => [p.terminalId, p]));
}

/**
 * Fills in the transport of sessions whose presence does not say it (presence announced on
 * connect carries none), from the sessions of the gateway node that holds them.
 */
export async function withTransports(ctx: Context, presence: Map<string, Presence>): Promise<void> {
	const missing = new Map<string, Presence[]>();
	for (const p of presence.values())
		if (!transportName(p.transport)) missing.set(p.nodeID, [...(missing.get(p.nodeID) ?? []), p]);
	await Promise.all(
		[...missing].map(async ([nodeID, wanted]) => {
			const sessions = await readAll<Presence>(ctx.broker, "gateway.sessions", { nodeID, parentCtx: ctx }).catch(
				() => [] as Presence[]
			);
			const bySession = new Map(sessions.map(s => [s.sessionId, s.transport]));
			for (const p of wanted) {
				const transport = bySession.get(p.sessionId);
				if (transport) presence.set(p.terminalId, { ...p, transport });
			}
		})
	);
}

function total(ctx: Context, terminalId: string, status: string): Promise<number> {
	return ctx.call<TaskPage, ListQuery>("dispatcher.list", { terminalId, status, pageSize: 1 }).then(page => page.total);
}

/** How many tasks a terminal holds (DELIVERED, PROCESSING). */
export function runningCount(ctx: Context, terminalId: string): Promise<number> {
	return total(ctx, terminalId, RUNNING);
}

/** Running and queued tasks of each terminal, a few terminals at a time. */
export async function taskCounts(ctx: Context, ids: string[]): Promise<Map<string, TaskCounts>> {
	const counts = new Map<string, TaskCounts>();
	let next = 0;
	const worker = async () => {
		while (next < ids.length) {
			const id = ids[next++];
			const [running, queued] = await Promise.all([total(ctx, id, RUNNING), total(ctx, id, "PENDING")]);
			counts.set(id, { running, queued });
		}
	};
	await Promise.all(Array.from({ length: Math.min(COUNT_PARALLELISM, ids.length) }, worker));
	return counts;
}

/**
 * Cancels every unfinished task submitted for this terminal by id (not the selector tasks it
 * happens to hold: those go back to the queue when its session closes, for another terminal).
 * Returns how many were cancelled.
 */
export async function cancelPinned(ctx: Context, terminalId: string): Promise<number> {
	const ids: string[] = [];
	for (let page = 1; ; page++) {
		const found = await ctx.call<TaskPage, ListQuery>("dispatcher.list", {
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
			await ctx.call<TaskQueryView, { id: string }>("dispatcher.cancel", { id });
			cancelled++;
		} catch (err) {
			// Finished meanwhile: nothing left to cancel.
			if ((err as { type?: string }).type !== "TASK_FINISHED") throw err;
		}
	}
	return cancelled;
}
