/**
 * scripts: named scripts with versions, for the agent's `script` runner. A task names
 * `name@version` (or `name` for the latest); agents fetch a version once and cache it by its
 * hash, so a new version is used by the next task without restarting any agent.
 */
import { createHash } from "node:crypto";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { UniqueConstraintError } from "sequelize";
import { DbMixin, type DbEntityMethods, type DbMixinSettings } from "../mixins/db.mixin.ts";
import { defineScript, INTERPRETERS, type Interpreter, type ScriptModel, type ScriptRow } from "../models/script.model.ts";
import type { TernMeta } from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser, requireUserOrTerminal } from "../lib/access.ts";
import { secondConfirmation } from "../lib/confirm.ts";
import { queryIntRule } from "../lib/rules.ts";
import { KeyringMixin, type KeyringMethods, type KeyringSettings, type KeyringVars } from "../mixins/keyring.mixin.ts";
import { scriptResealTarget, shownBody, storedBody } from "./scripts/sensitive.ts";

export interface ScriptsSettings extends ServiceSettingSchema, DbMixinSettings, Partial<KeyringSettings> {
	/** Largest script body, bytes. @defaultValue 1 MiB */
	maxBodyBytes: number;
	dbUri: string;
}

interface ScriptsVars extends KeyringVars {
	model: ScriptModel;
}
type ScriptsThis = Service<ScriptsSettings> & ScriptsVars & DbEntityMethods & KeyringMethods;

const nameRule = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.-]+$/ };

/** `body`: as the caller may see it (services/scripts/sensitive.ts), or none. */
function view(row: ScriptRow, body?: string) {
	return {
		name: row.name,
		version: row.version,
		interpreter: row.interpreter,
		sha256: row.sha256,
		sensitive: Boolean(row.sensitive),
		...(body !== undefined ? { body } : {}),
		createdBy: row.createdBy,
		createdAt: new Date(Number(row.createdAt)).toISOString()
	};
}

/** Without the body: what lists show. */
const SUMMARY_FIELDS = ["name", "version", "interpreter", "sha256", "createdBy", "createdAt", "sensitive"];

/** The one version `query` names (or the latest of a name), or null. */
async function findOne(service: ScriptsThis, ctx: Context, query: Partial<ScriptRow>): Promise<ScriptRow | null> {
	const [row] = (await service._find(ctx, { query, sort: ["-version"], limit: 1 })) as ScriptRow[];
	return row ?? null;
}

const ScriptsService: ServiceSchema<ScriptsSettings, DbEntityMethods & KeyringMethods, ScriptsVars> = {
	name: "scripts",
	mixins: [DbMixin(defineScript), KeyringMixin()],
	settings: { maxBodyBytes: 1024 * 1024, idField: "name", dbUri: "" },
	actions: {
		// moleculer-db's generic reads stay off: their params would merge into same-named actions.
		find: false,
		count: false,
		list: false,
		get: false,

		/** `POST /api/scripts` → 201 the new version (1 for a new name, else the latest + 1). */
		create: {
			params: {
				name: nameRule,
				interpreter: { type: "enum", values: [...INTERPRETERS] },
				body: { type: "string", min: 1 },
				/** Stored sealed; users see `body: "***"`, terminals the body. */
				sensitive: { type: "boolean", optional: true },
				$$strict: true
			},
			async handler(
				this: ScriptsThis,
				ctx: Context<{ name: string; interpreter: Interpreter; body: string; sensitive?: boolean }, TernMeta>
			) {
				requireUser(ctx, "operator");
				const bytes = Buffer.byteLength(ctx.params.body);
				if (bytes > this.settings.maxBodyBytes) throw Errors.payloadTooLarge(bytes, this.settings.maxBodyBytes);
				const principal = ctx.meta.principal;
				for (let tries = 0; ; tries++) {
					const version = ((await findOne(this, ctx, { name: ctx.params.name }))?.version ?? 0) + 1;
					const row: ScriptRow = {
						name: ctx.params.name,
						version,
						interpreter: ctx.params.interpreter,
						body: storedBody(ctx.params.body, ctx.params.sensitive === true, this.keyring),
						sensitive: ctx.params.sensitive === true,
						sha256: createHash("sha256").update(ctx.params.body).digest("hex"),
						createdBy: principal?.kind === "user" ? principal.username : null,
						createdAt: Date.now()
					};
					try {
						await this._create(ctx, row);
						ctx.meta.$statusCode = 201;
						ctx.meta.$location = `/api/scripts/${row.name}/versions/${row.version}`;
						return view(row);
					} catch (err) {
						// Two new versions at once: the loser takes the next number.
						if (!(err instanceof UniqueConstraintError) || tries >= 5) throw err;
					}
				}
			}
		},

		/** `GET /api/scripts`: the latest version of each script, without bodies. */
		catalog: {
			async handler(this: ScriptsThis, ctx: Context<unknown, TernMeta>) {
				requireUserOrTerminal(ctx);
				const rows = (await this._find(ctx, { sort: ["name", "-version"], fields: SUMMARY_FIELDS })) as ScriptRow[];
				const seen = new Set<string>();
				return rows.filter(r => !seen.has(r.name) && seen.add(r.name)).map(r => view(r));
			}
		},

		/** `GET /api/scripts/:name`: the latest version, with its body. Terminals may read it. */
		latest: {
			params: { name: nameRule },
			async handler(this: ScriptsThis, ctx: Context<{ name: string }, TernMeta>) {
				requireUserOrTerminal(ctx);
				const row = await findOne(this, ctx, { name: ctx.params.name });
				if (!row) throw Errors.scriptNotFound(ctx.params.name);
				return view(row, shownBody(row, ctx.meta.principal, this.keyring));
			}
		},

		/**
		 * `DELETE /api/scripts/:name` (admin): every version, after a second confirmation (202
		 * `{ confirm }` first). Tasks that name it fail on the agent from then on; 404 SCRIPT_NOT_FOUND.
		 */
		remove: {
			params: { name: nameRule, $$strict: true },
			async handler(this: ScriptsThis, ctx: Context<{ name: string }, TernMeta>) {
				requireUser(ctx, "admin");
				const { name } = ctx.params;
				const versions = await this._count(ctx, { query: { name } });
				if (versions === 0) throw Errors.scriptNotFound(name);
				const challenge = await secondConfirmation(ctx, {
					action: "scripts.remove",
					object: `script:${name}`,
					summary: `Deletes script '${name}' and its ${versions} version${versions === 1 ? "" : "s"}`
				});
				if (challenge) return challenge;
				const removed = await this.model.destroy({ where: { name } });
				return { name, removed: true, versions: removed };
			}
		},

		/** `GET /api/scripts/:name/versions/:version` */
		getVersion: {
			params: { name: nameRule, version: queryIntRule({ min: 1, max: 2_147_483_647 }), $$strict: true },
			async handler(this: ScriptsThis, ctx: Context<{ name: string; version: number }, TernMeta>) {
				requireUserOrTerminal(ctx);
				const row = await findOne(this, ctx, { name: ctx.params.name, version: ctx.params.version });
				if (!row) throw Errors.scriptNotFound(ctx.params.name, ctx.params.version);
				return view(row, shownBody(row, ctx.meta.principal, this.keyring));
			}
		}
	},
	started(this: ScriptsThis) {
		this.startResealing(() => [scriptResealTarget(this.model, this.keyring)]);
	}
};

export default ScriptsService;
