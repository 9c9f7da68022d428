/**
 * terminals: the registry of terminals — identity, labels, concurrency, enabled, key version.
 * Whether a terminal is online is presence, which the cache holds; the views here join both.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { LRUCache } from "lru-cache";
import { DbMixin } from "../mixins/db.mixin.ts";
import { defineTerminal, type TerminalModel, type TerminalRow } from "../models/terminal.model.ts";
import type {
	Labels,
	Presence,
	TerminalActiveEvent,
	TerminalDisconnectedEvent,
	TerminalRecord,
	TerminalRevokedEvent,
	TerminalUpdatedEvent,
	TerminalView,
	TernMeta
} from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser } from "../lib/access.ts";
import { normalizeLabels } from "../lib/labels.ts";
import { uuidv7 } from "../lib/ids.ts";

export interface TerminalsSettings extends ServiceSettingSchema {
	/** Concurrency of a terminal registered without one. @defaultValue 16 */
	defaultConcurrency: number;
	dbUri: string;
}

interface TerminalsVars {
	model: TerminalModel;
	records: LRUCache<string, TerminalRecord>;
}
interface TerminalsMethods {
	findRow(id: string): Promise<TerminalRow>;
	record(row: TerminalRow): TerminalRecord;
	view(row: TerminalRow, presence: Presence | undefined): TerminalView;
	presenceOf(ctx: Context, ids?: string[]): Promise<Map<string, Presence>>;
	setEnabled(ctx: Context<{ id: string }, TernMeta>, enabled: boolean): Promise<TerminalView>;
}
type TerminalsThis = Service<TerminalsSettings> & TerminalsVars & TerminalsMethods;

export interface RegisterParams {
	id?: string;
	name?: string;
	labels?: Labels | string[];
	concurrency?: number;
}

const idRule = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ };
const labelsRule = [
	{ type: "record", key: { type: "string", min: 1, max: 64 }, value: { type: "string", max: 256 } },
	{ type: "array", items: { type: "string", min: 1, max: 64 }, max: 64 }
];

const TerminalsService: ServiceSchema<TerminalsSettings, TerminalsMethods, TerminalsVars> = {
	name: "terminals",
	mixins: [DbMixin(defineTerminal)],
	settings: {
		defaultConcurrency: 16,
		dbUri: ""
	},
	actions: {
		find: false,
		count: false,

		/** `POST /api/terminals` (operator) → the terminal and its token. */
		register: {
			params: {
				id: { ...idRule, optional: true },
				name: { type: "string", max: 255, optional: true },
				labels: { type: "multi", rules: labelsRule, optional: true },
				concurrency: { type: "number", integer: true, min: 1, max: 10_000, optional: true },
				$$strict: true
			},
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
					createdAt: now,
					updatedAt: now
				};
				try {
					await this.model.create(row);
				} catch (err) {
					if ((err as Error).name === "SequelizeUniqueConstraintError") throw Errors.terminalExists(id);
					throw err;
				}
				const token = await ctx.call<string, { terminalId: string; keyVersion: number }>("auth.signTerminal", {
					terminalId: id,
					keyVersion: 1
				});
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/terminals/${encodeURIComponent(id)}`;
				return { ...this.view(row, undefined), token };
			}
		},

		/** `GET /api/terminals` → `[{ id, status, lastActiveAt, labels, … }]` */
		list: {
			params: {
				status: { type: "enum", values: ["online", "offline", "disabled"], optional: true },
				label: { type: "string", optional: true }
			},
			async handler(this: TerminalsThis, ctx: Context<{ status?: string; label?: string }, TernMeta>) {
				requireUser(ctx, "viewer");
				const rows = (await this.model.findAll({ order: [["id", "ASC"]], raw: true })) as unknown as TerminalRow[];
				const presence = await this.presenceOf(ctx);
				let views = rows.map(row => this.view(row, presence.get(row.id)));
				if (ctx.params.status) views = views.filter(v => v.status === ctx.params.status);
				if (ctx.params.label) {
					const [key, value] = ctx.params.label.split("=");
					views = views.filter(v => key in v.labels && (value === undefined || v.labels[key] === value));
				}
				return views;
			}
		},

		/** `GET /api/terminals/:id` */
		get: {
			params: { id: idRule },
			async handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "viewer");
				const row = await this.findRow(ctx.params.id);
				const presence = await this.presenceOf(ctx, [row.id]);
				return this.view(row, presence.get(row.id));
			}
		},

		/** `POST /api/terminals/:id/disable`: no more tasks; its connections are closed. */
		disable: {
			params: { id: idRule },
			handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				return this.setEnabled(ctx, false);
			}
		},

		/** `POST /api/terminals/:id/enable` */
		enable: {
			params: { id: idRule },
			handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				return this.setEnabled(ctx, true);
			}
		},

		/** `POST /api/terminals/:id/rotate-key` → a new token; every older one is refused from now. */
		rotateKey: {
			params: { id: idRule },
			async handler(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const row = await this.findRow(ctx.params.id);
				const keyVersion = row.keyVersion + 1;
				await this.model.update(
					{ keyVersion, updatedAt: Date.now() },
					{ where: { id: row.id, keyVersion: row.keyVersion } }
				);
				await ctx.broadcast("terminal.updated", { terminalId: row.id } satisfies TerminalUpdatedEvent);
				await ctx.broadcast("terminal.revoked", {
					terminalId: row.id,
					reason: "key-rotated"
				} satisfies TerminalRevokedEvent);
				const token = await ctx.call<string, { terminalId: string; keyVersion: number }>("auth.signTerminal", {
					terminalId: row.id,
					keyVersion
				});
				return { id: row.id, token, keyVersion };
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
				const record = this.record(row);
				this.records.set(row.id, record);
				return record;
			}
		},

		/** Every enabled terminal whose labels include these; for fan-out at submit. */
		matching: {
			visibility: "public",
			async handler(this: TerminalsThis): Promise<TerminalRecord[]> {
				const rows = (await this.model.findAll({
					where: { enabled: true },
					order: [["id", "ASC"]],
					raw: true
				})) as unknown as TerminalRow[];
				return rows.map(row => this.record(row));
			}
		}
	},
	events: {
		"terminal.updated"(this: TerminalsThis, ctx: Context<TerminalUpdatedEvent>) {
			this.records.delete(ctx.params.terminalId);
		},
		/** Keep the registry's lastActiveAt roughly current, in batches. */
		async "terminal.active"(this: TerminalsThis, ctx: Context<TerminalActiveEvent>) {
			// One statement (one commit) per 500 terminals rather than one each: a gateway with many
			// thousands of terminals reports them all every few seconds.
			const items = ctx.params.items;
			for (let start = 0; start < items.length; start += 500) {
				const chunk = items.slice(start, start + 500);
				const replacements: unknown[] = [];
				for (const item of chunk) replacements.push(item.terminalId, item.lastActiveAt);
				replacements.push(chunk.map(item => item.terminalId));
				await this.model.sequelize!.query(
					`UPDATE terminals SET lastActiveAt = CASE id ${chunk.map(() => "WHEN ? THEN ?").join(" ")} ELSE lastActiveAt END WHERE id IN (?)`,
					{ replacements }
				);
			}
		},
		async "terminal.disconnected"(this: TerminalsThis, ctx: Context<TerminalDisconnectedEvent>) {
			await this.model.update({ lastActiveAt: ctx.params.lastActiveAt }, { where: { id: ctx.params.terminalId } });
		}
	},
	methods: {
		async findRow(this: TerminalsThis, id: string): Promise<TerminalRow> {
			const row = (await this.model.findByPk(id, { raw: true })) as unknown as TerminalRow | null;
			if (!row) throw Errors.terminalNotFound(id);
			return row;
		},

		record(row: TerminalRow): TerminalRecord {
			return {
				id: row.id,
				labels: JSON.parse(row.labels) as Labels,
				concurrency: row.concurrency,
				enabled: Boolean(row.enabled),
				keyVersion: row.keyVersion
			};
		},

		view(row: TerminalRow, presence: Presence | undefined): TerminalView {
			const enabled = Boolean(row.enabled);
			const lastActive = presence?.lastActiveAt ?? (row.lastActiveAt === null ? null : Number(row.lastActiveAt));
			return {
				id: row.id,
				name: row.name,
				status: !enabled ? "disabled" : presence ? "online" : "offline",
				labels: JSON.parse(row.labels) as Labels,
				concurrency: presence?.concurrency ?? row.concurrency,
				enabled,
				lastActiveAt: lastActive === null ? null : new Date(lastActive).toISOString(),
				connectedAt: presence ? new Date(presence.connectedAt).toISOString() : null,
				nodeID: presence?.nodeID ?? null,
				createdAt: new Date(Number(row.createdAt)).toISOString()
			};
		},

		async presenceOf(ctx: Context, ids?: string[]): Promise<Map<string, Presence>> {
			const list = await ctx.call<Presence[], { terminalIds?: string[] }>(
				"cache.presenceList",
				ids ? { terminalIds: ids } : {}
			);
			return new Map(list.map(p => [p.terminalId, p]));
		},

		async setEnabled(this: TerminalsThis, ctx: Context<{ id: string }, TernMeta>, enabled: boolean) {
			requireUser(ctx, "operator");
			const row = await this.findRow(ctx.params.id);
			await this.model.update({ enabled, updatedAt: Date.now() }, { where: { id: row.id } });
			await ctx.broadcast("terminal.updated", { terminalId: row.id } satisfies TerminalUpdatedEvent);
			if (!enabled)
				await ctx.broadcast("terminal.revoked", {
					terminalId: row.id,
					reason: "disabled"
				} satisfies TerminalRevokedEvent);
			const presence = await this.presenceOf(ctx, [row.id]);
			return this.view({ ...row, enabled }, enabled ? presence.get(row.id) : undefined);
		}
	},
	created(this: TerminalsThis) {
		this.records = new LRUCache({ max: 100_000, ttl: 60_000 });
	}
};

export default TerminalsService;
