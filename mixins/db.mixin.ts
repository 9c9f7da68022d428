/**
 * moleculer-db over the node's shared, migrated Sequelize instance (see lib/db.ts). The
 * service names its model definition; the mixin gives it `this.adapter` and `this.model`,
 * moleculer-db's read actions, and no generic write actions: every write goes through the
 * service's own actions, which keep its invariants.
 */
import DbService from "moleculer-db";
import SequelizeAdapter from "moleculer-db-adapter-sequelize";
import type { Model, ModelStatic, Sequelize } from "sequelize";
import type { Service, ServiceBroker, ServiceSchema, ServiceSettingSchema } from "moleculer";
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
		created() {
			const uri = (this.settings as DbMixinSettings).dbUri;
			if (!uri) throw new TypeError(`Service '${this.name}' needs settings.dbUri`);
			this.adapter = new SharedSequelizeAdapter(uri, define);
			this.adapter.init(this.broker, this);
		}
	};
}
