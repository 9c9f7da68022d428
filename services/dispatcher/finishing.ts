/**
 * Ending an attempt: the change a result, a timeout or a cancel decides is written, and what
 * follows it is set going — a retry without backoff is routed at once, a terminal that freed a
 * slot drains its queue, a terminal whose task was cancelled is told.
 */
import { Errors } from "../../lib/errors.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import type { Routing } from "./routing.ts";
import { transition, type Change } from "./transitions.ts";

export class Finishing {
	private readonly core: DispatcherCore;
	readonly routing: Routing;

	constructor(core: DispatcherCore, routing: Routing) {
		this.core = core;
		this.routing = routing;
	}

	/** Writes an ending (final, or a retry); a retry due now is routed. Null when the row had moved on. */
	async end(row: TaskRow, change: Change): Promise<TaskRow | null> {
		const next = await this.core.write(row, change);
		if (next && change.retry && next.notBefore === null) this.routing.routeLater(next);
		return next;
	}

	/** A terminal is told, wherever it is connected (best effort). */
	async tellTerminal(terminalId: string, data: { taskId: string; attempt?: number; reason?: string }): Promise<void> {
		const presence = this.core.presence.get(terminalId);
		if (presence) await this.core.outbox.push(presence, { event: "cancel", data });
	}

	/** Any non-final state → CANCELLED; a terminal holding the task is told to stop it. */
	async cancel(taskId: string): Promise<TaskRow> {
		for (let tries = 0; tries < 5; tries++) {
			const row = await this.core.mustGet(taskId);
			const outcome = transition(row, { kind: "cancel" }, Date.now());
			if (outcome.kind === "refused") throw outcome.error;
			if (outcome.kind !== "change") continue;
			const next = await this.core.write(row, outcome);
			if (!next) continue;
			if ((row.status === "DELIVERED" || row.status === "PROCESSING") && row.terminalId) {
				await this.tellTerminal(row.terminalId, { taskId, attempt: row.attempt, reason: "cancelled" });
				void this.routing.requestDrain(row.terminalId).catch(() => undefined);
			}
			return next;
		}
		throw Errors.stateConflict(taskId);
	}
}
