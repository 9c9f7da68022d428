/**
 * audit: the audit log. `audit.record` appends what the audit middleware (lib/audit/middleware.ts)
 * reports, on this node's own hash chain; `GET /api/audit` lists it, newest first;
 * `POST /api/audit/verify` walks every chain and says whether any row was edited, removed or
 * moved. Nothing here updates or deletes a row. The modules under audit/ hold the chain (pure),
 * the SQL, the writer, the verification, the params and the views.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Sequelize } from "sequelize";
import { acquireDatabase, releaseDatabase } from "../lib/db.ts";
import type { AuditEntry, AuditQuery, AuditRow, AuditVerification, TernMeta } from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser } from "../lib/access.ts";
import { listParams, readQuery, recordParams } from "./audit/params.ts";
import { AuditStore } from "./audit/store.ts";
import { ChainWriter } from "./audit/writer.ts";
import { verifyLog } from "./audit/verify.ts";
import { toAuditRow } from "./audit/views.ts";

export interface AuditSettings extends ServiceSettingSchema {
	/** The chain this node writes; its nodeID when empty (one chain per writing node). @defaultValue "" */
	chain: string;
	/** sqlite://<file> or mysql://…; set by the node from DB_URI. */
	dbUri: string;
}

interface AuditVars {
	db: Sequelize;
	store: AuditStore;
	writer: ChainWriter;
}
type AuditThis = Service<AuditSettings> & AuditVars;

const AuditService: ServiceSchema<AuditSettings, Record<string, never>, AuditVars> = {
	name: "audit",
	settings: { chain: "", dbUri: "" },
	actions: {
		/**
		 * Appends entries to this node's chain, in order; internal only (no route, and a caller from
		 * outside is refused): the middleware of every node sends its batches here.
		 */
		record: {
			params: recordParams,
			async handler(this: AuditThis, ctx: Context<{ entries: AuditEntry[] }, TernMeta>): Promise<{ written: number }> {
				if (ctx.meta.principal) throw Errors.forbidden("The audit log is written by Tern itself");
				return { written: await this.writer.append(ctx.params.entries) };
			}
		},

		/** `GET /api/audit` (admin): filters actor, action, object, since, until; paging → `{ rows, total }`, newest first. */
		list: {
			params: listParams,
			async handler(this: AuditThis, ctx: Context<AuditQuery, TernMeta>): Promise<{ rows: AuditRow[]; total: number }> {
				requireUser(ctx, "admin");
				const { filter, offset, limit } = readQuery(ctx.params);
				const [rows, total] = await Promise.all([this.store.list(filter, offset, limit), this.store.count(filter)]);
				return { rows: rows.map(toAuditRow), total };
			}
		},

		/** `POST /api/audit/verify` (admin): every chain checked from its first row to its last. */
		verify: {
			params: { $$strict: true },
			async handler(this: AuditThis, ctx: Context<Record<string, never>, TernMeta>): Promise<AuditVerification> {
				requireUser(ctx, "admin");
				return verifyLog(this.store, { chain: this.writer.chain, head: this.writer.head });
			}
		},

		/** For readiness probes: the database answers. */
		health: {
			visibility: "public",
			async handler(this: AuditThis) {
				await this.db.query("SELECT 1");
				return { ok: true };
			}
		}
	},
	created(this: AuditThis) {
		if (!this.settings.dbUri) throw new TypeError("Service 'audit' needs settings.dbUri");
	},
	async started(this: AuditThis) {
		// The table is the node's shared, migrated database (lib/db.ts); its model is models/audit.model.ts.
		this.db = await acquireDatabase(this.settings.dbUri);
		this.store = new AuditStore(this.db);
		this.writer = new ChainWriter(this.store, this.settings.chain || this.broker.nodeID);
	},
	async stopped(this: AuditThis) {
		if (this.db) await releaseDatabase(this.settings.dbUri);
	}
};

export default AuditService;
