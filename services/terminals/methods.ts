/**
 * The terminals service's methods and the shape of its `this`, spread into the service by
 * terminals.service.ts.
 */
import type { Context, Service, ServiceSettingSchema } from "moleculer";
import type { LRUCache } from "lru-cache";
import type { DbEntityMethods, DbMixinSettings } from "../../mixins/db.mixin.ts";
import { isEntityNotFound } from "../../mixins/db.mixin.ts";
import type { TerminalModel, TerminalRow } from "../../models/terminal.model.ts";
import type { TerminalRecord, TerminalRevokedEvent, TerminalUpdatedEvent, TerminalView, TernMeta } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { requireUser } from "../../lib/access.ts";
import { NO_TASKS, toView, type TaskCounts } from "./views.ts";
import { presenceOf, taskCounts } from "./fleet.ts";
import type { Drains } from "./drains.ts";

export interface TerminalsSettings extends ServiceSettingSchema, DbMixinSettings {
	/** Concurrency of a terminal registered without one. @defaultValue 16 */
	defaultConcurrency: number;
	/** A terminal that pulled within this long is online (as a socket's heartbeat window), ms. @defaultValue 60000 */
	pullWindow: number;
	/** A terminal's pulls are written at most this often, ms. @defaultValue 5000 */
	touchInterval: number;
}

export interface TerminalsVars {
	model: TerminalModel;
	records: LRUCache<string, TerminalRecord>;
	drains: Drains;
	/** When each terminal's last pull was written by this replica. */
	touched: LRUCache<string, number>;
}
export interface TerminalsMethods {
	findRow(ctx: Context, id: string): Promise<TerminalRow>;
	change(ctx: Context, id: string, changes: Partial<TerminalRow>): Promise<TerminalRow>;
	viewsOf(ctx: Context, rows: TerminalRow[], live?: boolean): Promise<TerminalView[]>;
	setEnabled(ctx: Context<{ id: string }, TernMeta>, enabled: boolean): Promise<TerminalView>;
	setDraining(ctx: Context<{ id: string }, TernMeta>, draining: boolean): Promise<TerminalView>;
}
export type TerminalsThis = Service<TerminalsSettings> & TerminalsVars & TerminalsMethods & DbEntityMethods;

/** Bound to the service by Moleculer: `this` is the service. */
export const methods = {
	/** The row, as moleculer-db's entity methods give it; TERMINAL_NOT_FOUND otherwise. */
	async findRow(this: TerminalsThis, ctx: Context, id: string): Promise<TerminalRow> {
		try {
			return (await this._get(ctx, { id })) as TerminalRow;
		} catch (err) {
			if (isEntityNotFound(err)) throw Errors.terminalNotFound(id);
			throw err;
		}
	},

	/** Writes `changes` and announces them; the row as it is now. */
	async change(this: TerminalsThis, ctx: Context, id: string, changes: Partial<TerminalRow>): Promise<TerminalRow> {
		let row: TerminalRow;
		try {
			row = (await this._update(ctx, { id, ...changes, updatedAt: Date.now() })) as TerminalRow;
		} catch (err) {
			if (isEntityNotFound(err)) throw Errors.terminalNotFound(id);
			throw err;
		}
		await ctx.broadcast("terminal.updated", { terminalId: id } satisfies TerminalUpdatedEvent);
		return row;
	},

	/** Views of `rows`, with presence (which carries the session's transport) and task counts (`live`: presence is looked up). */
	async viewsOf(this: TerminalsThis, ctx: Context, rows: TerminalRow[], live = true): Promise<TerminalView[]> {
		const ids = rows.map(row => row.id);
		const presence = live ? await presenceOf(ctx, ids) : new Map();
		const counts: Map<string, TaskCounts> = await taskCounts(ctx, ids);
		const now = Date.now();
		return rows.map(row => toView(row, presence.get(row.id), counts.get(row.id) ?? NO_TASKS, now, this.settings.pullWindow));
	},

	async setEnabled(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>, enabled: boolean) {
		requireUser(ctx, "operator");
		const row = await this.change(ctx, ctx.params.id, { enabled });
		if (!enabled)
			await ctx.broadcast("terminal.revoked", {
				terminalId: row.id,
				reason: "disabled"
			} satisfies TerminalRevokedEvent);
		const [view] = await this.viewsOf(ctx, [row], enabled);
		return view;
	},

	async setDraining(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>, draining: boolean) {
		requireUser(ctx, "operator");
		const row = await this.change(ctx, ctx.params.id, { draining });
		this.drains.set(row.id, draining, true);
		// Holding nothing already: it is told at once.
		if (draining) await this.drains.settle(ctx, row.id);
		const [view] = await this.viewsOf(ctx, [row]);
		return view;
	}
};
