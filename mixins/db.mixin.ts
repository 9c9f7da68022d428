/**
 * moleculer-db over the node's shared, migrated Sequelize instance (see lib/db.ts). The
 * service names its model definition; the mixin gives it `this.adapter` and `this.model`,
 * moleculer-db's read actions and entity methods (`_find`, `_get`, `_create`, `_update`,
 * `_remove`: fields, sort, paging, search), and no generic write actions: every write goes
 * through the service's own actions, which keep its invariants and call the entity methods.
 */
import DbService from "moleculer-db";
import SequelizeAdapter from "moleculer-db-adapter-sequelize";
import type { Model, ModelStatic, Sequelize } from "sequelize";
import type { Context, Service, ServiceBroker, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { acquireDatabase, releaseDatabase } from "../lib/db.ts";

type Define = (sequelize: Sequelize) => ModelStatic<Model>;

class SharedSequelizeAdapter extends SequelizeAdapter {
	declare db: Sequelize;
	declare model: ModelStatic<Model>;
	declare service: Service & { model: ModelStatic<Model> };
	declare broker: ServiceBroker;
	private readonly uri: string;
	private readonly define: Define;

	constructor(uri: string, define: Define) {
		super({});
		this.uri = uri;
		this.define = define;
	}

	/** The model comes from `define`, not from the schema, so skip the parent's schema check. */
	init(broker: ServiceBroker, service: Service): void {
		this.broker = broker;
		this.service = service as Service & { model: ModelStatic<Model> };
	}

	async connect(): Promise<void> {
		this.db = await acquireDatabase(this.uri);
		this.model = this.define(this.db);
		this.service.model = this.model;
	}

	async disconnect(): Promise<void> {
		await releaseDatabase(this.uri);
	}
}

export interface DbMixinSettings {
	/** sqlite://<file> or mysql://user:pass@host:port/db; set by the node from DB_URI. */
	dbUri: string;
	/** The primary key's column; moleculer-db's default (`_id`) would add an empty field to every entity. */
	idField?: string;
	/** The fields entity methods return; all when absent. */
	fields?: string[];
}

/** Params of moleculer-db's entity methods, as this code uses them (sort: `["name", "-version"]`). */
export interface DbQuery {
	query?: Record<string | symbol, unknown>;
	sort?: string[];
	limit?: number;
	offset?: number;
	fields?: string[];
	search?: string;
	searchFields?: string[];
}

/**
 * moleculer-db's entity methods. Results are plain objects filtered by `settings.fields`; a
 * missing id rejects with moleculer-db's EntityNotFoundError (name `EntityNotFoundError`).
 */
export interface DbEntityMethods {
	_find(ctx: Context, params: DbQuery): Promise<unknown[]>;
	_count(ctx: Context, params: DbQuery): Promise<number>;
	_get(ctx: Context, params: { id: unknown }): Promise<unknown>;
	_create(ctx: Context, entity: object): Promise<unknown>;
	_update(ctx: Context, params: { id: unknown } & Record<string, unknown>): Promise<unknown>;
	_remove(ctx: Context, params: { id: unknown }): Promise<unknown>;
}

/** moleculer-db's answer for an id it does not hold. */
export function isEntityNotFound(err: unknown): boolean {
	return (err as Error | undefined)?.name === "EntityNotFoundError";
}

/** @param define the model definition of the service's own table */
export function DbMixin(define: Define): Partial<ServiceSchema> {
	return {
		mixins: [DbService as unknown as Partial<ServiceSchema>],
		settings: { dbUri: "" } as ServiceSettingSchema,
		actions: {
			create: false,
			insert: false,
			update: false,
			remove: false,
			/** For readiness probes: the database answers. */
			health: {
				visibility: "public",
				async handler(this: Service & Record<string, unknown>) {
					await (this.adapter as SharedSequelizeAdapter).db.query("SELECT 1");
					return { ok: true };
				}
			}
		},
		methods: {
			/**
			 * moleculer-db broadcasts `cache.clean.<service>` to every node on each write, for
			 * cachers; Tern runs none, so without one the broadcast is skipped.
			 */
			clearCache(this: Service) {
				if (!this.broker.cacher) return Promise.resolve();
				void this.broker.broadcast(`cache.clean.${this.fullName}`);
				return this.broker.cacher.clean(`${this.fullName}.**`);
			}
		},
		created() {
			const uri = (this.settings as DbMixinSettings).dbUri;
			if (!uri) throw new TypeError(`Service '${this.name}' needs settings.dbUri`);
			this.adapter = new SharedSequelizeAdapter(uri, define);
			this.adapter.init(this.broker, this);
		}
	};
}
