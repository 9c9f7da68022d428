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
import type {
	ConfigChangedEvent,
	FireEvent,
	ReconcileReport,
	RuntimeSettings,
	SystemConfigView,
	SystemStatus,
	VersionView,
	TaskStatusesEvent,
	TernMeta
} from "../lib/contracts.ts";
import { acquireDatabase, releaseDatabase } from "../lib/db.ts";
import { requireUser } from "../lib/access.ts";
import { nodesRunning } from "../lib/membership.ts";
import { VERSION } from "../lib/version.ts";
import { Evaluator } from "./monitor/evaluator.ts";
import { Sampler } from "./monitor/sampler.ts";
import { storageOf, systemStatus } from "./monitor/status.ts";
import { reconcileCluster } from "./monitor/reconcile.ts";
import { LatencyWindow } from "./monitor/latency.ts";
import { readRuntime, RUNTIME_NAMES, updateConfigParams, writeRuntime } from "./monitor/config.ts";
import { defineRuntimeSetting, type RuntimeSettingModel } from "../models/runtime-setting.model.ts";
import { RuntimeSettingsMixin } from "../mixins/runtime-settings.mixin.ts";
import { AlertMetrics } from "../lib/metrics/alerts.ts";
import { call } from "../lib/actions.ts";

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
	/** The node's configuration, secrets redacted (moleculer.config.ts `describeConfig`). */
	config: Record<string, unknown>;
	/** The commit this node was built from; null when unknown. @defaultValue null */
	commit: string | null;
	/** How often the consistency check runs by itself (on one monitor replica), ms; 0: only on demand. @defaultValue 60000 */
	reconcileInterval: number;
}

interface MonitorVars {
	evaluator: Evaluator;
	/** Phase latencies of the last minute, for the status page. */
	latency: LatencyWindow;
	db: Sequelize | null;
	runtimeModel: RuntimeSettingModel | null;
	timer: NodeJS.Timeout | null;
	reconcileTimer: NodeJS.Timeout | null;
	metrics: AlertMetrics;
}
interface MonitorMethods {
	updateReplicas(): void;
	schedule(): void;
	runtime(): Promise<RuntimeSettings>;
	announceRuntime(changed?: RuntimeSettings): Promise<void>;
	reconcile(): Promise<ReconcileReport>;
}
type MonitorThis = Service<MonitorSettings> & MonitorVars & MonitorMethods;

const MonitorService: ServiceSchema<MonitorSettings, MonitorMethods, MonitorVars> = {
	name: "monitor",
	mixins: [
		RuntimeSettingsMixin<MonitorThis>({
			evaluateInterval(value) {
				this.settings.evaluateInterval = value;
			},
			minTasksForRate(value) {
				this.evaluator.options.minTasksForRate = value;
			}
		})
	],
	settings: {
		dbUri: "",
		evaluateInterval: 5000,
		dbPingTimeout: 5000,
		minTasksForRate: 10,
		callTimeout: 3000,
		config: {},
		commit: null,
		reconcileInterval: 60_000
	},
	actions: {
		/** `GET /api/system/status` (any user). */
		status: {
			async handler(this: MonitorThis, ctx: Context<unknown, TernMeta>): Promise<SystemStatus> {
				requireUser(ctx, "viewer");
				return systemStatus(this.broker, this.evaluator.memory.counts, this.latency, VERSION);
			}
		},

		/** `GET /api/system/config` (admin): this node's configuration, secrets redacted, and the run-time settings. */
		config: {
			async handler(this: MonitorThis, ctx: Context<unknown, TernMeta>): Promise<SystemConfigView> {
				requireUser(ctx, "admin");
				return { nodeID: this.broker.nodeID, config: this.settings.config, runtime: await this.runtime() };
			}
		},

		/**
		 * `PUT /api/system/config` (admin) `{ rateLimit?, maxResultBytes?, evaluateInterval?, minTasksForRate? }`:
		 * stored, then applied by every node that uses it. Answers as GET does.
		 */
		updateConfig: {
			params: updateConfigParams,
			async handler(this: MonitorThis, ctx: Context<RuntimeSettings, TernMeta>): Promise<SystemConfigView> {
				requireUser(ctx, "admin");
				const principal = ctx.meta.principal;
				const by = principal?.kind === "user" ? principal.username : null;
				if (this.runtimeModel) await writeRuntime(this.runtimeModel, ctx.params, by, Date.now());
				this.logger.info(`Run-time settings changed by ${by ?? "an internal call"}:`, JSON.stringify(ctx.params));
				await this.announceRuntime(this.runtimeModel ? undefined : ctx.params);
				return { nodeID: this.broker.nodeID, config: this.settings.config, runtime: await this.runtime() };
			}
		},

		/** `GET /api/version` (no sign-in needed). */
		version: {
			handler(this: MonitorThis): VersionView {
				return {
					version: VERSION,
					commit: this.settings.commit,
					mode: this.broker.transit ? "cluster" : "embedded",
					nodeID: this.broker.nodeID
				};
			}
		},

		/** `POST /api/system/reconcile` (admin; the REPL's `reconcile`): the consistency check, now, repairs included. */
		reconcile: {
			params: { $$strict: true },
			async handler(this: MonitorThis, ctx: Context<unknown, TernMeta>): Promise<ReconcileReport> {
				requireUser(ctx, "admin");
				return this.reconcile();
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
			this.latency.record(ctx.params.events);
		},
		"job.fire"(this: MonitorThis, ctx: Context<FireEvent>) {
			this.evaluator.recordFire(ctx.params);
		},
		"$node.disconnected"(this: MonitorThis, ctx: Context<{ node: { id: string }; unexpected: boolean }>) {
			this.evaluator.nodeLeft(ctx.params.node.id, ctx.params.unexpected);
		},
		/** A node that joins hears the run-time settings it may have missed. */
		"$node.connected"(this: MonitorThis, ctx: Context<{ node: { id: string } }>) {
			this.evaluator.nodeBack(ctx.params.node.id);
			void this.announceRuntime().catch(err =>
				this.logger.warn("Run-time settings not announced:", (err as Error).message)
			);
		},
		/** Also when a service of this node starts after the monitor: it hears the run-time settings. */
		"$services.changed"(this: MonitorThis, ctx: Context<{ localService?: boolean }>) {
			this.updateReplicas();
			// Other nodes hear them when they connect ($node.connected); a change elsewhere needs nothing.
			if (!ctx.params.localService) return;
			void this.announceRuntime().catch(err =>
				this.logger.warn("Run-time settings not announced:", (err as Error).message)
			);
		}
	},
	methods: {
		/** The monitor replicas share the rules among themselves. */
		updateReplicas(this: MonitorThis) {
			this.evaluator.ownership.set(nodesRunning(this.broker, "monitor"));
		},

		/** The run-time settings now: stored values over the configuration's. */
		async runtime(this: MonitorThis): Promise<RuntimeSettings> {
			const config = this.settings.config as { rateLimit?: number; maxResultBytes?: number };
			const current: RuntimeSettings = {
				rateLimit: config.rateLimit,
				maxResultBytes: config.maxResultBytes,
				evaluateInterval: this.settings.evaluateInterval,
				minTasksForRate: this.evaluator.options.minTasksForRate
			};
			const stored = this.runtimeModel ? await readRuntime(this.runtimeModel) : {};
			return Object.fromEntries(RUNTIME_NAMES.map(name => [name, stored[name] ?? current[name]]));
		},

		async announceRuntime(this: MonitorThis, changed?: RuntimeSettings) {
			const settings = changed ?? (this.runtimeModel ? await readRuntime(this.runtimeModel) : {});
			if (Object.keys(settings).length > 0)
				await this.broker.broadcast("config.changed", { settings } satisfies ConfigChangedEvent);
		},

		async reconcile(this: MonitorThis) {
			const report = await reconcileCluster(this.broker);
			const found = report.checks.filter(c => c.found > 0).map(c => `${c.name}: ${c.found} found, ${c.repaired} repaired`);
			if (found.length > 0) this.logger.warn(`Consistency check: ${found.join("; ")}`);
			if (report.unanswered.length > 0)
				this.logger.warn(`Consistency check: no answer from ${report.unanswered.join(", ")}`);
			return report;
		},

		schedule(this: MonitorThis) {
			this.timer = setTimeout(() => {
				this.updateReplicas();
				this.evaluator
					.tick()
					.catch(err => this.logger.warn("Evaluation failed:", (err as Error).message))
					// No alert service in reach: the gauge keeps its last value.
					.then(() => call(this.broker, "alert.firingCount", {}).then(({ firing }) => this.metrics.firingNow(firing)))
					.catch(() => undefined)
					.finally(() => {
						if (this.timer) this.schedule();
					});
			}, this.settings.evaluateInterval);
		}
	},
	created(this: MonitorThis) {
		this.db = null;
		this.runtimeModel = null;
		this.timer = null;
		this.reconcileTimer = null;
		this.metrics = new AlertMetrics(this.broker.metrics);
		const sampler = new Sampler(
			this.broker,
			() => this.db,
			{ dbPingTimeout: this.settings.dbPingTimeout, callTimeout: this.settings.callTimeout },
			this.logger,
			() => storageOf(this.broker)
		);
		this.latency = new LatencyWindow();
		this.evaluator = new Evaluator(
			this.broker,
			this.broker.nodeID,
			sampler,
			{ minTasksForRate: this.settings.minTasksForRate },
			this.logger
		);
	},
	async started(this: MonitorThis) {
		if (this.settings.dbUri) {
			this.db = await acquireDatabase(this.settings.dbUri);
			this.runtimeModel = defineRuntimeSetting(this.db);
			await this.announceRuntime();
		}
		this.updateReplicas();
		this.schedule();
		// One monitor replica runs the check on its timer: the one that owns it among them.
		if (this.settings.reconcileInterval > 0)
			this.reconcileTimer = setInterval(() => {
				if (this.evaluator.ownership.owns("reconcile"))
					this.reconcile().catch(err => this.logger.warn("Consistency check failed:", (err as Error).message));
			}, this.settings.reconcileInterval);
	},
	async stopped(this: MonitorThis) {
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		if (this.reconcileTimer) clearInterval(this.reconcileTimer);
		this.reconcileTimer = null;
		if (this.db) await releaseDatabase(this.settings.dbUri);
		this.db = null;
	}
};

export default MonitorService;
