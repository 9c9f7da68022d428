/**
 * scheduler: jobs — a task body and a schedule — fired exactly once per fire time across any
 * number of replicas, with a ledger row for every computed fire time. See scheduler/scheduler.ts
 * for how firing and ownership work.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DbMixin } from "../mixins/db.mixin.ts";
import { defineJob, type JobModel, type JobRow } from "../models/job.model.ts";
import type { ReconcileCheck, TaskStatusesEvent, TernMeta } from "../lib/contracts.ts";
import { NodeLease } from "../lib/lease.ts";

const leaseHolder = (nodeID: string) => `scheduler@${nodeID}`;
import { Errors } from "../lib/errors.ts";
import { requireUser } from "../lib/access.ts";
import { secondConfirmation } from "../lib/confirm.ts";
import { nodesRunning } from "../lib/membership.ts";
import { Scheduler, type SchedulerOptions } from "./scheduler/scheduler.ts";
import { JobStore, normalize } from "./scheduler/store.ts";
import { jobChanges, jobFields, newJobRow } from "./scheduler/job-body.ts";
import { toFireView, toJobView } from "./scheduler/views.ts";
import { jobResealTarget } from "./scheduler/secrets.ts";
import { KeyringMixin, type KeyringMethods, type KeyringVars } from "../mixins/keyring.mixin.ts";
import {
	createParams,
	historyParams,
	previewParams,
	idParams,
	listParams,
	updateParams,
	type JobBody,
	type ListParams
} from "./scheduler/params.ts";
import { call } from "../lib/actions.ts";
import { previewFires, type PreviewParams, type PreviewResult } from "./scheduler/preview.ts";

export interface SchedulerSettings extends ServiceSettingSchema, SchedulerOptions {
	/** catch_up window of a job created without one, s. @defaultValue 3600 */
	defaultCatchUpWindow: number;
	/** Largest task payload, bytes of JSON. @defaultValue 256 KiB */
	maxPayloadBytes: number;
	/** Jobs per page of the list when not asked (moleculer-db). @defaultValue 20 */
	pageSize: number;
	/** Largest page of the list (moleculer-db). @defaultValue 500 */
	maxPageSize: number;
	dbUri: string;
}

/** What moleculer-db's mixin adds that the list uses. */
interface DbMethods {
	sanitizeParams(ctx: Context, params: Record<string, unknown>): Record<string, unknown>;
	_list(
		ctx: Context,
		params: Record<string, unknown>
	): Promise<{ rows: JobRow[]; total: number; page: number; pageSize: number; totalPages: number }>;
}
interface SchedulerVars extends DbMethods, KeyringVars {
	model: JobModel;
	store: JobStore;
	core: Scheduler;
	recoveryTimer: NodeJS.Timeout;
	completionTimer: NodeJS.Timeout;
	lease: NodeLease | null;
}
interface SchedulerMethods extends KeyringMethods {
	mustGet(id: string): Promise<JobRow>;
	checkOwner(ctx: Context<unknown, TernMeta>, row: JobRow): void;
	validate(body: Partial<JobBody>, base?: JobRow): Promise<Partial<JobRow>>;
	view(row: JobRow): ReturnType<typeof toJobView>;
	changed(ctx: Context, jobId: string): Promise<void>;
	setEnabled(ctx: Context<{ id: string }, TernMeta>, enabled: boolean): Promise<ReturnType<typeof toJobView>>;
}
type SchedulerThis = Service<SchedulerSettings> & SchedulerVars & SchedulerMethods;

const SchedulerService: ServiceSchema<SchedulerSettings, SchedulerMethods, SchedulerVars> = {
	name: "scheduler",
	mixins: [DbMixin(defineJob), KeyringMixin()],
	// A fire's submit needs the terminal registry too (the dispatcher asks it for the target): a
	// scheduler that armed its jobs before it was up would fail the late fires of its start.
	dependencies: ["dispatcher", "terminals"],
	settings: {
		misfireThreshold: 5000,
		maxMissedRecords: 1000,
		recoveryInterval: 1000,
		staleClaimAfter: 5000,
		leaseTtl: 6000,
		completionCheckInterval: 5000,
		fireConcurrency: 64,
		defaultCatchUpWindow: 3600,
		// moleculer-db's paging of the job list.
		pageSize: 20,
		maxPageSize: 500,
		maxPayloadBytes: 256 * 1024,
		dbUri: ""
	},
	actions: {
		find: false,
		count: false,

		/** This replica's part of the consistency check (the monitor's `POST /api/system/reconcile`). */
		reconcile: {
			visibility: "public",
			async handler(this: SchedulerThis): Promise<ReconcileCheck[]> {
				const { found, repaired } = await this.core.reconcile();
				const description = "a fire claimed and never settled: its task may not exist";
				return [{ name: "fire-without-task", description, found: found.length, repaired, samples: found.slice(0, 10) }];
			}
		},

		/** `POST /api/jobs` → 201 the job, with its next five fire times. */
		create: {
			params: createParams,
			async handler(this: SchedulerThis, ctx: Context<JobBody, TernMeta>) {
				requireUser(ctx, "operator");
				const principal = ctx.meta.principal;
				const fields = await this.validate(ctx.params);
				const now = Date.now();
				const row = newJobRow(
					ctx.params,
					fields,
					principal?.kind === "user" ? principal.username : null,
					this.settings.defaultCatchUpWindow,
					now
				);
				await this.store.insert(row);
				await this.changed(ctx, row.id);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/jobs/${row.id}`;
				// The fire times from the moment the job was made: the owner arms it from then too (a
				// second that passed while it was written still fires), so the answer names that fire.
				return toJobView(row, this.core.upcoming(row, 5, now));
			}
		},

		/** `GET /api/jobs` → `{ rows, total, page, pageSize, totalPages }`, newest first. */
		list: {
			params: listParams,
			async handler(this: SchedulerThis, ctx: Context<ListParams, TernMeta>) {
				requireUser(ctx, "viewer");
				const { enabled, name, page, pageSize, sort, search } = ctx.params;
				const query: Record<string, unknown> = {};
				if (enabled !== undefined) query.enabled = enabled;
				if (name) query.name = name;
				// moleculer-db's own list (pages, sort, search over the model); rows become job views.
				const params = this.sanitizeParams(ctx, {
					query,
					page,
					pageSize,
					sort: [sort ?? "-createdAt", sort?.startsWith("-") === false ? "id" : "-id"],
					...(search ? { search, searchFields: ["name"] } : {})
				});
				const result = await this._list(ctx, params);
				return { ...result, rows: result.rows.map(row => this.view(normalize(row))) };
			}
		},

		/** `POST /api/jobs/preview`: the next fire times of a schedule not yet saved; changes nothing. */
		preview: {
			params: previewParams,
			handler(this: SchedulerThis, ctx: Context<PreviewParams, TernMeta>): PreviewResult {
				requireUser(ctx, "viewer");
				return previewFires(ctx.params);
			}
		},

		/** `GET /api/jobs/:id` */
		get: {
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "viewer");
				return this.view(await this.mustGet(ctx.params.id));
			}
		},

		/** `PUT /api/jobs/:id`: fields given replace the job's; the rest stay. */
		update: {
			params: updateParams,
			async handler(this: SchedulerThis, ctx: Context<Partial<JobBody> & { id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const row = await this.mustGet(ctx.params.id);
				this.checkOwner(ctx, row);
				const { id, ...body } = ctx.params;
				const changes = jobChanges(body, row, await this.validate(body, row), Date.now());
				await this.store.update(id, changes);
				await this.changed(ctx, id);
				return this.view(await this.mustGet(id));
			}
		},

		/**
		 * `DELETE /api/jobs/:id`: the job and its ledger, after a second confirmation (202 `{ confirm }`
		 * first, then the same call with `X-Confirm`). Tasks already created stay.
		 */
		remove: {
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const row = await this.mustGet(ctx.params.id);
				this.checkOwner(ctx, row);
				const challenge = await secondConfirmation(ctx, {
					action: "scheduler.remove",
					object: `job:${row.id}`,
					summary: `Deletes job '${row.name}' and its fire history; tasks it already created stay`
				});
				if (challenge) return challenge;
				await this.store.remove(row.id);
				await this.changed(ctx, row.id);
				return { id: row.id, removed: true };
			}
		},

		/** `POST /api/jobs/:id/execute`: run now, on the replica that owns the job. */
		execute: {
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const row = await this.mustGet(ctx.params.id);
				this.checkOwner(ctx, row);
				const owner = this.core.ownerOf(row.id);
				const run =
					owner === this.broker.nodeID
						? await this.core.runNow(row)
						: await call(ctx, "scheduler.executeOwned", { id: row.id }, { nodeID: owner });
				return {
					jobId: row.id,
					fireTime: new Date(run.fireTime).toISOString(),
					taskId: run.taskIds[0] ?? null,
					taskIds: run.taskIds
				};
			}
		},

		/** `execute` forwarded to this replica, the job's owner. */
		executeOwned: {
			visibility: "public",
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }>) {
				return this.core.runNow(await this.mustGet(ctx.params.id));
			}
		},

		/** `POST /api/jobs/:id/cancel`: cancels the running instance (the latest run's unfinished tasks). */
		cancel: {
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const row = await this.mustGet(ctx.params.id);
				this.checkOwner(ctx, row);
				return { jobId: row.id, cancelled: await this.core.cancelRunning(row) };
			}
		},

		/** `POST /api/jobs/:id/pause`: no fires until resumed; fire times meanwhile become PAUSED rows. */
		pause: {
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				return this.setEnabled(ctx, false);
			}
		},

		/** `POST /api/jobs/:id/resume`: the misfire policy decides about the fire times paused over. */
		resume: {
			params: idParams,
			async handler(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				return this.setEnabled(ctx, true);
			}
		},

		/** `GET /api/jobs/:id/history`: the fire ledger, newest first. */
		history: {
			params: historyParams,
			async handler(
				this: SchedulerThis,
				ctx: Context<{ id: string; outcome?: string; page?: number; pageSize?: number }, TernMeta>
			) {
				requireUser(ctx, "viewer");
				const row = await this.mustGet(ctx.params.id);
				const page = ctx.params.page ?? 1;
				const pageSize = ctx.params.pageSize ?? 50;
				const { rows, total } = await this.store.history(row.id, (page - 1) * pageSize, pageSize, ctx.params.outcome);
				return { rows: rows.map(toFireView), total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
			}
		},

		/** Jobs armed on this replica, for the REPL and tests. */
		stats: {
			visibility: "public",
			handler(this: SchedulerThis) {
				return { nodeID: this.broker.nodeID, armed: this.core.armedCount };
			}
		}
	},
	events: {
		async "job.changed"(this: SchedulerThis, ctx: Context<{ jobId: string }>) {
			await this.core?.onJobChanged(ctx.params.jobId);
		},
		/** Which runs to read from the tasks table sooner; a lost one is caught by the completion check. */
		async "task.statuses"(this: SchedulerThis, ctx: Context<TaskStatusesEvent>) {
			await this.core?.onTaskStatuses(ctx.params.events);
		},
		/** Replicas came or went: jobs move with them. */
		async "$services.changed"(this: SchedulerThis) {
			await this.core?.setOwners(nodesRunning(this.broker, "scheduler"));
		},
		/** A replica that vanished may only be frozen: its lease is ended before its jobs are taken over. */
		async "$node.disconnected"(this: SchedulerThis, ctx: Context<{ node: { id: string }; unexpected?: boolean }>) {
			if (ctx.params.unexpected && this.lease)
				await this.lease
					.revoke(leaseHolder(ctx.params.node.id))
					.catch(err =>
						this.logger.warn(`Could not end the lease of ${ctx.params.node.id}: ${(err as Error).message}`)
					);
			await this.core?.setOwners(nodesRunning(this.broker, "scheduler"));
		}
	},
	methods: {
		async mustGet(this: SchedulerThis, id: string) {
			const row = await this.store.get(id);
			if (!row) throw Errors.jobNotFound(id);
			return row;
		},

		/** Operators manage their own jobs; admins any. */
		checkOwner(this: SchedulerThis, ctx: Context<unknown, TernMeta>, row: JobRow) {
			const principal = ctx.meta.principal;
			if (principal?.kind === "user" && principal.role === "operator" && row.createdBy !== principal.username)
				throw Errors.forbidden(`Job '${row.id}' belongs to '${row.createdBy}': operators manage their own jobs`);
		},

		/** Checks what the validator cannot (schedule, target, payload size, dates) and returns row fields. */
		validate(this: SchedulerThis, body: Partial<JobBody>, base?: JobRow) {
			return jobFields(this.broker, this.settings.maxPayloadBytes, body, this.keyring, base);
		},

		/** Pauses or resumes the job of `ctx.params.id` (no change if it is so already); answers its view. */
		async setEnabled(this: SchedulerThis, ctx: Context<{ id: string }, TernMeta>, enabled: boolean) {
			const row = await this.mustGet(ctx.params.id);
			this.checkOwner(ctx, row);
			if (row.enabled !== enabled) {
				await this.store.update(row.id, jobChanges({ enabled }, row, {}, Date.now()));
				await this.changed(ctx, row.id);
			}
			return this.view(await this.mustGet(row.id));
		},

		view(this: SchedulerThis, row: JobRow) {
			return toJobView(row, this.core.upcoming(row, 5));
		},

		/** Tells every replica; the job's owner re-arms it. */
		async changed(this: SchedulerThis, ctx: Context, jobId: string) {
			await ctx.broadcast("job.changed", { jobId });
		}
	},
	created(this: SchedulerThis) {
		this.lease = null;
	},
	async started(this: SchedulerThis) {
		this.store = new JobStore(this.model);
		this.lease = new NodeLease(this.store.sql, leaseHolder(this.broker.nodeID), {
			ttlMs: this.settings.leaseTtl,
			onLost: reason => {
				this.logger.warn(`Scheduler lease lost: ${reason}; reading the jobs again`);
				void this.core?.resync({ rearm: true }).catch(err => this.logger.warn("Resync failed", err));
			}
		});
		await this.lease.start();
		this.store.lease = this.lease;
		this.store.onFenced = refused => this.logger.warn(`${refused} fire claim(s) refused: this replica's lease is over`);
		this.core = new Scheduler({
			broker: this.broker,
			logger: this.logger,
			store: this.store,
			options: this.settings,
			keyring: this.keyring
		});
		await this.core.setOwners(nodesRunning(this.broker, "scheduler"));
		await this.core.resync();
		this.recoveryTimer = setInterval(
			() => void this.core.recover().catch(err => this.logger.warn("Recovery failed", err)),
			this.settings.recoveryInterval
		);
		this.completionTimer = setInterval(
			() => void this.core.checkOpenRuns().catch(err => this.logger.warn("Completion check failed", err)),
			this.settings.completionCheckInterval
		);
		this.startResealing(() => [jobResealTarget(this.model, this.keyring)]);
	},
	async stopped(this: SchedulerThis) {
		clearInterval(this.recoveryTimer);
		clearInterval(this.completionTimer);
		this.lease?.stop();
		this.core?.stop();
	}
};

export default SchedulerService;
