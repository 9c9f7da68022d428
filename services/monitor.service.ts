/**
 * monitor: watches the cluster and judges the alert rules. Every tick (`evaluateInterval`) it
 * reads the fleet, the queue and the database once, adds what it has counted from the
 * broadcasts (task ends, fire problems, nodes that vanished), and hands each rule it owns to the
 * alert service, which keeps the alerts and sends. It also answers the status page.
 * See monitor/evaluator.ts for who evaluates which rule, monitor/signals.ts for what each
 * signal means.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Sequelize } from "sequelize";
import type { FireEvent, SystemStatus, TaskStatusesEvent, TernMeta } from "../lib/contracts.ts";
import { acquireDatabase, releaseDatabase } from "../lib/db.ts";
import { requireUser } from "../lib/access.ts";
import { nodesRunning } from "../lib/membership.ts";
import { VERSION } from "../lib/version.ts";
import { Evaluator } from "./monitor/evaluator.ts";
import { Sampler } from "./monitor/sampler.ts";
import { systemStatus } from "./monitor/status.ts";

export interface MonitorSettings extends ServiceSettingSchema {
	dbUri: string;
	/** How often the rules are judged, ms. @defaultValue 5000 */
	evaluateInterval: number;
	/** A database ping slower than this counts as unreachable, ms. @defaultValue 5000 */
	dbPingTimeout: number;
	/** A task rate is judged once this many tasks ended within its window. @defaultValue 10 */
	minTasksForRate: number;
	/** How long the monitor waits for the services it reads, ms. @defaultValue 3000 */
	callTimeout: number;
}

interface MonitorVars {
	evaluator: Evaluator;
	db: Sequelize | null;
	timer: NodeJS.Timeout | null;
}
interface MonitorMethods {
	updateReplicas(): void;
	schedule(): void;
}
type MonitorThis = Service<MonitorSettings> & MonitorVars & MonitorMethods;

const MonitorService: ServiceSchema<MonitorSettings, MonitorMethods, MonitorVars> = {
	name: "monitor",
	settings: { dbUri: "", evaluateInterval: 5000, dbPingTimeout: 5000, minTasksForRate: 10, callTimeout: 3000 },
	actions: {
		/** `GET /api/system/status` (any user). */
		status: {
			async handler(this: MonitorThis, ctx: Context<unknown, TernMeta>): Promise<SystemStatus> {
				requireUser(ctx, "viewer");
				return systemStatus(this.broker, this.evaluator.memory.counts, VERSION);
			}
		},

		/** `GET /api/version` (no sign-in needed). */
		version: {
			handler(): { version: string } {
				return { version: VERSION };
			}
		},

		/** One evaluation now (the REPL, the tests); the timer keeps its pace. */
		evaluate: {
			visibility: "public",
			handler(this: MonitorThis) {
				return this.evaluator.tick();
			}
		}
	},
	events: {
		"task.statuses"(this: MonitorThis, ctx: Context<TaskStatusesEvent>) {
			this.evaluator.recordStatuses(ctx.params.events);
		},
		"job.fire"(this: MonitorThis, ctx: Context<FireEvent>) {
			this.evaluator.recordFire(ctx.params);
		},
		"$node.disconnected"(this: MonitorThis, ctx: Context<{ node: { id: string }; unexpected: boolean }>) {
			this.evaluator.nodeLeft(ctx.params.node.id, ctx.params.unexpected);
		},
		"$node.connected"(this: MonitorThis, ctx: Context<{ node: { id: string } }>) {
			this.evaluator.nodeBack(ctx.params.node.id);
		},
		"$services.changed"(this: MonitorThis) {
			this.updateReplicas();
		}
	},
	methods: {
		/** The monitor replicas share the rules among themselves. */
		updateReplicas(this: MonitorThis) {
			this.evaluator.ownership.set(nodesRunning(this.broker, "monitor"));
		},

		schedule(this: MonitorThis) {
			this.timer = setTimeout(() => {
				this.updateReplicas();
				this.evaluator
					.tick()
					.catch(err => this.logger.warn("Evaluation failed:", (err as Error).message))
					.finally(() => {
						if (this.timer) this.schedule();
					});
			}, this.settings.evaluateInterval);
		}
	},
	created(this: MonitorThis) {
		this.db = null;
		this.timer = null;
		const sampler = new Sampler(
			this.broker,
			() => this.db,
			{ dbPingTimeout: this.settings.dbPingTimeout, callTimeout: this.settings.callTimeout },
			this.logger
		);
		this.evaluator = new Evaluator(
			this.broker,
			this.broker.nodeID,
			sampler,
			{ minTasksForRate: this.settings.minTasksForRate },
			this.logger
		);
	},
	async started(this: MonitorThis) {
		if (this.settings.dbUri) this.db = await acquireDatabase(this.settings.dbUri);
		this.updateReplicas();
		this.schedule();
	},
	async stopped(this: MonitorThis) {
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		if (this.db) await releaseDatabase(this.settings.dbUri);
		this.db = null;
	}
};

export default MonitorService;
