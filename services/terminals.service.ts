/**
 * terminals: the registry of terminals — identity, labels, concurrency, enabled, draining, key
 * version — and the fleet operations on it. Whether a terminal is online is presence, which the
 * cache holds (or a recent HTTP pull, which the registry records); the views here join both.
 * Admin CRUD goes through moleculer-db's entity methods; the modules under terminals/ hold the
 * params, views, drains, SQL and the calls to other services.
 */
import type { Context, ServiceSchema } from "moleculer";
import { LRUCache } from "lru-cache";
import { DbMixin, isEntityNotFound, type DbEntityMethods } from "../mixins/db.mixin.ts";
import { defineTerminal, type TerminalRow } from "../models/terminal.model.ts";
import type {
	ConfirmationChallenge,
	FleetSummary,
	TaskStatusesEvent,
	TerminalActiveEvent,
	TerminalDeleted,
	TerminalDisconnectedEvent,
	TerminalRecord,
	TerminalRevokedEvent,
	TerminalTouchParams,
	TerminalUpdatedEvent,
	TerminalView,
	TernMeta
} from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser, requireUserOrSelf } from "../lib/access.ts";
import { normalizeLabels } from "../lib/labels.ts";
import { uuidv7 } from "../lib/ids.ts";
import { secondConfirmation } from "../lib/confirm.ts";
import {
	byIdParams,
	listParams,
	PATCH_FIELDS,
	patchParams,
	registerParams,
	rotateKeyParams,
	touchParams,
	type ListParams,
	type PatchParams,
	type RegisterParams,
	type RotateKeyParams
} from "./terminals/params.ts";
import { rotateKey } from "./terminals/rotation.ts";
import { hasLabel, NO_TASKS, statusOf, summarize, toRecord, toView } from "./terminals/views.ts";
import { cancelPinned, presenceOf, runningCount, taskCounts } from "./terminals/fleet.ts";
import {
	methods,
	type TerminalsMethods,
	type TerminalsSettings,
	type TerminalsThis,
	type TerminalsVars
} from "./terminals/methods.ts";
import { Drains } from "./terminals/drains.ts";
import { recordActivity } from "./terminals/store.ts";
import { call } from "../lib/actions.ts";

export type { RegisterParams } from "./terminals/params.ts";
export type { TerminalsSettings } from "./terminals/methods.ts";

const TerminalsService: ServiceSchema<TerminalsSettings, TerminalsMethods & DbEntityMethods, TerminalsVars> = {
	name: "terminals",
	mixins: [DbMixin(defineTerminal)],
	settings: {
		defaultConcurrency: 16,
		pullWindow: 60_000,
		touchInterval: 5000,
		idField: "id",
		dbUri: ""
	},
	actions: {
		find: false,
		count: false,

		/** `POST /api/terminals` (operator) → the terminal and its token. */
		register: {
			params: registerParams,
			async handler(this: TerminalsThis, ctx: Context<RegisterParams, TernMeta>) {
				requireUser(ctx, "operator");
				const id = ctx.params.id ?? `t-${uuidv7()}`;
				if (await this.model.findByPk(id)) throw Errors.terminalExists(id);
				const now = Date.now();
				const row: TerminalRow = {
					id,
					name: ctx.params.name ?? null,
					labels: JSON.stringify(normalizeLabels(ctx.params.labels)),
					concurrency: ctx.params.concurrency ?? this.settings.defaultConcurrency,
					enabled: true,
					keyVersion: 1,
					lastActiveAt: null,
					draining: false,
					pulledAt: null,
					keyIssuedAt: now,
					previousKeyVersion: null,
					previousKeyUntil: null,
					createdAt: now,
					updatedAt: now
				};
				try {
					await this._create(ctx, row);
				} catch (err) {
					if ((err as Error).name === "SequelizeUniqueConstraintError") throw Errors.terminalExists(id);
					throw err;
				}
				const token = await call(ctx, "auth.signTerminal", {
					terminalId: id,
					keyVersion: 1
				});
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/terminals/${encodeURIComponent(id)}`;
				return { ...toView(row, undefined, NO_TASKS, now, this.settings.pullWindow), token };
			}
		},

		/** `GET /api/terminals` → `[{ id, status, lastActiveAt, labels, transport, running, queued, … }]` */
		list: {
			params: listParams,
			async handler(this: TerminalsThis, ctx: Context<ListParams, TernMeta>): Promise<TerminalView[]> {
				requireUser(ctx, "viewer");
				const { status, label } = ctx.params;
				let rows = (await this._find(ctx, {
					sort: ["id"],
					query: status === "disabled" ? { enabled: false } : {}
				})) as TerminalRow[];
				if (label) rows = rows.filter(row => hasLabel(JSON.parse(row.labels) as Record<string, string>, label));
				if (status && status !== "disabled") {
					const presence = await presenceOf(ctx);
					const now = Date.now();
					rows = rows.filter(row => statusOf(row, presence.get(row.id), now, this.settings.pullWindow) === status);
				}
				return this.viewsOf(ctx, rows);
			}
		},

		/** Online, offline and disabled counts, and the critical terminals offline (the monitor, the status page). */
		summary: {
			visibility: "public",
			async handler(this: TerminalsThis, ctx: Context<unknown, TernMeta>): Promise<FleetSummary> {
				const rows = (await this._find(ctx, {
					fields: ["id", "enabled", "labels", "lastActiveAt", "pulledAt", "createdAt"]
				})) as TerminalRow[];
				return summarize(rows, await presenceOf(ctx), Date.now(), this.settings.pullWindow);
			}
		},

		/** `GET /api/terminals/:id` */
		get: {
			params: byIdParams,
			async handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>): Promise<TerminalView> {
				requireUserOrSelf(ctx, ctx.params.id, () => Errors.terminalNotFound(ctx.params.id));
				const [view] = await this.viewsOf(ctx, [await this.findRow(ctx, ctx.params.id)]);
				return view;
			}
		},

		/**
		 * `PATCH /api/terminals/:id` (operator) `{ name?, labels?, concurrency? }` → the terminal.
		 * Announced, so that the dispatcher and gateways read the record again.
		 */
		patch: {
			params: patchParams,
			async handler(this: TerminalsThis, ctx: Context<PatchParams, TernMeta>): Promise<TerminalView> {
				requireUser(ctx, "operator");
				const { id, name, labels, concurrency } = ctx.params;
				if (PATCH_FIELDS.every(field => ctx.params[field] === undefined)) {
					const message = `Give at least one of ${PATCH_FIELDS.map(f => `'${f}'`).join(", ")}`;
					throw Errors.validation(message, [{ type: "required", field: "body", message }]);
				}
				const changes: Partial<TerminalRow> = {};
				if (name !== undefined) changes.name = name;
				if (labels !== undefined) changes.labels = JSON.stringify(normalizeLabels(labels));
				if (concurrency !== undefined) changes.concurrency = concurrency;
				const row = await this.change(ctx, id, changes);
				const [view] = await this.viewsOf(ctx, [row]);
				return view;
			}
		},

		/**
		 * `DELETE /api/terminals/:id` (operator), with a second confirmation: 202 `{ confirm }` first;
		 * repeated with `X-Confirm` → `{ id, deleted: true, tasks: { cancelled } }`. Its token stops
		 * working, its session is closed, and the tasks submitted for it by id are cancelled.
		 */
		delete: {
			params: byIdParams,
			async handler(
				this: TerminalsThis,
				ctx: Context<{ id: string }, TernMeta>
			): Promise<TerminalDeleted | ConfirmationChallenge> {
				requireUser(ctx, "operator");
				const row = await this.findRow(ctx, ctx.params.id);
				const [counts] = (await taskCounts(ctx, [row.id])).values();
				const challenge = await secondConfirmation(ctx, {
					action: "terminals.delete",
					object: `terminal:${row.id}`,
					summary:
						`Delete terminal '${row.id}': its token stops working, its session is closed, and the ` +
						`${counts.queued + counts.running} unfinished task(s) submitted for it are cancelled`
				});
				if (challenge) return challenge;
				try {
					await this._remove(ctx, { id: row.id });
				} catch (err) {
					if (isEntityNotFound(err)) throw Errors.terminalNotFound(row.id);
					throw err;
				}
				this.drains.set(row.id, false);
				await ctx.broadcast("terminal.updated", { terminalId: row.id } satisfies TerminalUpdatedEvent);
				await ctx.broadcast("terminal.revoked", { terminalId: row.id, reason: "deleted" } satisfies TerminalRevokedEvent);
				return { id: row.id, deleted: true, tasks: { cancelled: await cancelPinned(ctx, row.id) } };
			}
		},

		/** `POST /api/terminals/:id/drain` (operator): no new work; disconnected once its running tasks end. */
		drain: {
			params: byIdParams,
			handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				return this.setDraining(ctx, true);
			}
		},

		/** `POST /api/terminals/:id/undrain` (operator): takes work again. */
		undrain: {
			params: byIdParams,
			handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				return this.setDraining(ctx, false);
			}
		},

		/** `POST /api/terminals/:id/disable`: no more tasks; its connections are closed. */
		disable: {
			params: byIdParams,
			handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				return this.setEnabled(ctx, false);
			}
		},

		/** `POST /api/terminals/:id/enable` */
		enable: {
			params: byIdParams,
			handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				return this.setEnabled(ctx, true);
			}
		},

		/**
		 * `POST /api/terminals/:id/rotate-key` `{ graceSeconds? }` (operator), with a second
		 * confirmation → a new token; older ones are refused now, or after the grace period.
		 */
		rotateKey: {
			params: rotateKeyParams,
			handler(this: TerminalsThis, ctx: Context<RotateKeyParams, TernMeta>) {
				return rotateKey(this, ctx);
			}
		},

		/**
		 * A terminal showed it is alive without a session: an HTTP pull (the dispatcher calls this
		 * from `pull`). It is online, transport `pull`, while it pulls within `pullWindow`.
		 */
		touch: {
			visibility: "public",
			params: touchParams,
			async handler(this: TerminalsThis, ctx: Context<TerminalTouchParams>) {
				const now = Date.now();
				const last = this.touched.get(ctx.params.id);
				if (last !== undefined && now - last < this.settings.touchInterval) return { ok: true };
				const [changed] = await this.model.update({ pulledAt: now, lastActiveAt: now }, { where: { id: ctx.params.id } });
				if (changed === 0) throw Errors.terminalNotFound(ctx.params.id);
				this.touched.set(ctx.params.id, now);
				return { ok: true };
			}
		},

		/** What the gateway, auth and the dispatcher need of a terminal; null when unknown. Cached. */
		resolve: {
			visibility: "public",
			params: { id: "string" },
			async handler(this: TerminalsThis, ctx: Context<{ id: string }>): Promise<TerminalRecord | null> {
				const cached = this.records.get(ctx.params.id);
				if (cached) return cached;
				const row = (await this.model.findByPk(ctx.params.id, { raw: true })) as unknown as TerminalRow | null;
				if (!row) return null;
				const record = toRecord(row);
				this.records.set(row.id, record);
				return record;
			}
		},

		/** Every enabled terminal; for fan-out at submit. */
		matching: {
			visibility: "public",
			async handler(this: TerminalsThis, ctx: Context): Promise<TerminalRecord[]> {
				const rows = (await this._find(ctx, { query: { enabled: true }, sort: ["id"] })) as TerminalRow[];
				return rows.map(toRecord);
			}
		}
	},
	events: {
		/** Its record changed (here or on another replica): forget the cached one, follow its drain. */
		async "terminal.updated"(this: TerminalsThis, ctx: Context<TerminalUpdatedEvent>) {
			const id = ctx.params.terminalId;
			this.records.delete(id);
			const row = (await this.model.findByPk(id, { raw: true })) as unknown as TerminalRow | null;
			this.drains.set(id, Boolean(row?.draining));
		},
		/** Keep the registry's lastActiveAt roughly current, in batches. */
		async "terminal.active"(this: TerminalsThis, ctx: Context<TerminalActiveEvent>) {
			await recordActivity(this.model.sequelize!, ctx.params.items);
		},
		async "terminal.disconnected"(this: TerminalsThis, ctx: Context<TerminalDisconnectedEvent>) {
			await this.model.update({ lastActiveAt: ctx.params.lastActiveAt }, { where: { id: ctx.params.terminalId } });
		},
		/** A task of a draining terminal moved: it may hold nothing now, and be told to disconnect. */
		async "task.statuses"(this: TerminalsThis, ctx: Context<TaskStatusesEvent>) {
			const ids = new Set<string>();
			for (const event of ctx.params.events)
				if (event.terminalId && this.drains.has(event.terminalId)) ids.add(event.terminalId);
			await Promise.all(
				[...ids].map(id => this.drains.settle(ctx, id).catch(err => this.logger.warn(`Drain of '${id}'`, err)))
			);
		}
	},
	methods,
	created(this: TerminalsThis) {
		this.records = new LRUCache({ max: 100_000, ttl: 60_000 });
		this.touched = new LRUCache({ max: 100_000 });
		this.drains = new Drains({
			running: runningCount,
			disconnect: async (ctx, terminalId) => {
				await ctx.broadcast("terminal.revoked", { terminalId, reason: "drained" } satisfies TerminalRevokedEvent);
			}
		});
	},
	async started(this: TerminalsThis) {
		const rows = (await this.model.findAll({ where: { draining: true }, attributes: ["id"], raw: true })) as unknown as {
			id: string;
		}[];
		for (const row of rows) this.drains.set(row.id, true);
	}
};

export default TerminalsService;
