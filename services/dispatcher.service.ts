/**
 * dispatcher: owns the task table and the lifecycle state machine.
 *
 *   submit ─▶ PENDING ─push─▶ DELIVERED ─ack─▶ PROCESSING ─result─▶ COMPLETED | FAILED
 *   timeouts ─▶ TIMEOUT; FAILED/TIMEOUT ─retry─▶ PENDING; cancel ─▶ CANCELLED; ttl ─▶ EXPIRED
 *
 * Each change is written (compare-and-set on status and attempt) before it is announced or
 * pushed. Deciding what a terminal gets next runs under that terminal's lock, so its
 * advertised concurrency is never exceeded. Deadlines live in the rows; a sweep enforces them,
 * so a restart loses none.
 */
import { RuntimeSettingsMixin } from "../mixins/runtime-settings.mixin.ts";
import type { Context, Service, ServiceSchema } from "moleculer";
import { DbMixin } from "../mixins/db.mixin.ts";
import { KeyringMixin, type KeyringMethods, type KeyringVars } from "../mixins/keyring.mixin.ts";
import { taskResealTarget } from "./dispatcher/reseal.ts";
import { defineTask, type TaskModel } from "../models/task.model.ts";
import type {
	Presence,
	Principal,
	RepliesParams,
	ReplyAnswer,
	SubmitResult,
	TaskPush,
	TerminalConnectedEvent,
	TerminalDisconnectedEvent,
	TerminalUpdatedEvent,
	TernMeta
} from "../lib/contracts.ts";
import { actingTerminal, operatorOf, requireUser } from "../lib/access.ts";
import { isExternal } from "../lib/access/middleware.ts";
import { secondConfirmation } from "../lib/confirm.ts";
import { Errors } from "../lib/errors.ts";
import { countPurgeable, purgeObject, purgeParams, purgeScope, purgeTasks, type PurgeParams } from "./dispatcher/purge.ts";
import type { ResilientTaskStore } from "./dispatcher/resilient-store.ts";
import { faultActions, followTransport, openStore } from "./dispatcher/fault-actions.ts";
import { learnGateways } from "./dispatcher/gateways.ts";
import { dispatcherMetrics, watchQueueDepth } from "./dispatcher/metrics.ts";
import { toQueryView } from "./dispatcher/views.ts";
import { Dispatcher } from "./dispatcher/dispatcher.ts";
import { readActions } from "./dispatcher/reads.ts";
import type { DispatcherSettings } from "./dispatcher/settings.ts";
import { nodesRunning } from "../lib/membership.ts";
import { OWNER_STRATEGY } from "../lib/owner-strategy.ts";
import { readAll } from "../lib/paging.ts";
import {
	ackParams,
	connectedParams,
	fieldsOf,
	progressParams,
	pullParams,
	resultParams,
	taskBodyParams,
	taskBodyProps,
	taskIdRule,
	type AckActionParams,
	type ProgressActionParams,
	type PullParams,
	type ResultActionParams,
	type SubmitParams
} from "./dispatcher/params.ts";

export type { DispatcherSettings };

interface DispatcherVars extends KeyringVars {
	model: TaskModel;
	dispatcher: Dispatcher;
	store: ResilientTaskStore;
	sweepTimer: NodeJS.Timeout;
	depthTimer: NodeJS.Timeout | undefined;
	/** Gateway nodes whose sessions this replica has read since they appeared. */
	gatewaysKnown: Set<string>;
	unwatch?: () => void;
}
interface DispatcherMethods extends KeyringMethods {
	learnGateways(): Promise<void>;
}
type DispatcherThis = Service<DispatcherSettings> & DispatcherVars & DispatcherMethods;

/** Node IDs of every available dispatcher. */
function dispatcherNodes(service: DispatcherThis): string[] {
	return nodesRunning(service.broker, "dispatcher");
}

const DispatcherService: ServiceSchema<DispatcherSettings, DispatcherMethods, DispatcherVars> = {
	name: "dispatcher",
	mixins: [
		DbMixin(defineTask),
		KeyringMixin(),
		RuntimeSettingsMixin<DispatcherThis>({
			maxResultBytes(value) {
				this.settings.maxResultBytes = value;
			}
		})
	],
	dependencies: ["cache"],
	settings: {
		defaults: { priority: 5, timeout: 300, ackTimeout: 30, ttl: 86_400, maxRetries: 0 },
		maxPayloadBytes: 256 * 1024,
		maxResultBytes: 1024 * 1024,
		idempotencyWindow: 86_400_000,
		maxDeliveries: 3,
		sweepInterval: 250,
		queueDepthInterval: 5000,
		rescanInterval: 5000,
		sweepBatch: 500,
		maxLogLines: 10_000,
		logRetention: 7 * 86_400_000,
		dbUri: "",
		dbDeadlineMs: 5000,
		dbProbeInterval: 1000,
		connectConcurrency: 32,
		journalDir: ""
	},
	actions: {
		find: false,
		count: false,

		/** `POST /api/task/submit` → 201 `{ taskId }`; queued, or pushed at once to an online terminal. */
		submit: {
			strategy: OWNER_STRATEGY,
			params: taskBodyParams,
			async handler(this: DispatcherThis, ctx: Context<SubmitParams, TernMeta>): Promise<SubmitResult> {
				requireUser(ctx, "operator");
				const result = await this.dispatcher.admission.submit(ctx.params, ctx.meta.principal);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/tasks/${encodeURIComponent(result.taskId)}`;
				return result;
			}
		},

		/**
		 * `POST /api/tasks/batch` `{ tasks: [task…] }` (up to 1000) → 200 `{ results: [{ taskId } | { error }] }`:
		 * each task is taken in or refused on its own, as `task/submit` would; they share their writes.
		 */
		submitBatch: {
			params: {
				tasks: { type: "array", min: 1, max: 1000, items: { type: "object", strict: true, props: taskBodyProps } },
				$$strict: true
			},
			async handler(this: DispatcherThis, ctx: Context<{ tasks: SubmitParams[] }, TernMeta>) {
				requireUser(ctx, "operator");
				return { results: await this.dispatcher.admission.submitBatch(ctx.params.tasks, ctx.meta.principal) };
			}
		},

		/** Many tasks in one go (the scheduler's fires of one tick); an answer or an error per task. */
		submitMany: {
			visibility: "public",
			params: { tasks: { type: "array", max: 5000, items: { type: "object", strict: true, props: taskBodyProps } } },
			async handler(this: DispatcherThis, ctx: Context<{ tasks: SubmitParams[] }, TernMeta>) {
				return this.dispatcher.admission.submitBatch(ctx.params.tasks, ctx.meta.principal);
			}
		},

		/** `GET /api/task/pull` (terminal token): hands over up to `limit` tasks and marks them DELIVERED. */
		pull: {
			strategy: OWNER_STRATEGY,
			params: pullParams,
			async handler(this: DispatcherThis, ctx: Context<PullParams, TernMeta>): Promise<{ tasks: TaskPush[] }> {
				const terminalId = actingTerminal(ctx, ctx.params.terminalId);
				return { tasks: await this.dispatcher.pull(terminalId, ctx.params.limit) };
			}
		},

		/** `ack` from a terminal: DELIVERED → PROCESSING. Repeating it is harmless. */
		ack: {
			strategy: OWNER_STRATEGY,
			params: ackParams,
			async handler(this: DispatcherThis, ctx: Context<AckActionParams, TernMeta>) {
				const terminalId = actingTerminal(ctx, ctx.params.terminalId);
				return this.dispatcher.replies.ack(terminalId, ctx.params.taskId, ctx.params.attempt);
			}
		},

		/** `progress` from a terminal: percent is kept, log lines are relayed to followers. */
		progress: {
			strategy: OWNER_STRATEGY,
			params: progressParams,
			async handler(this: DispatcherThis, ctx: Context<ProgressActionParams, TernMeta>) {
				const terminalId = actingTerminal(ctx, ctx.params.terminalId);
				return this.dispatcher.replies.progress(terminalId, ctx.params);
			}
		},

		/** `POST /api/task/result` and the `result` event: the attempt's outcome → 202. */
		result: {
			strategy: OWNER_STRATEGY,
			params: resultParams,
			async handler(this: DispatcherThis, ctx: Context<ResultActionParams, TernMeta>) {
				const terminalId = actingTerminal(ctx, ctx.params.terminalId);
				const reply = await this.dispatcher.replies.result(terminalId, ctx.params);
				ctx.meta.$statusCode = 202;
				return reply;
			}
		},

		...readActions,
		...faultActions,

		/**
		 * `POST /api/tasks/:id/cancel`: any non-final state → CANCELLED; the terminal is told. An
		 * operator cancels only the tasks it submitted (design §6); an admin any.
		 */
		cancel: {
			params: { id: taskIdRule, $$strict: true },
			async handler(this: DispatcherThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const operator = isExternal(ctx) ? operatorOf(ctx) : null;
				if (operator !== null) {
					const row = await this.dispatcher.core.mustGet(ctx.params.id);
					if (row.createdBy !== operator)
						throw Errors.forbidden(
							`Task '${row.id}' was submitted by someone else: operators cancel their own tasks`
						);
				}
				return toQueryView(await this.dispatcher.finishing.cancel(ctx.params.id));
			}
		},

		/**
		 * `POST /api/tasks/purge` (admin) `{ before, status? }`: finished tasks older than `before`
		 * and their output, deleted, after a second confirmation (202 saying how many would go).
		 */
		purge: {
			params: purgeParams,
			async handler(this: DispatcherThis, ctx: Context<PurgeParams, TernMeta>) {
				requireUser(ctx, "admin");
				const scope = purgeScope(ctx.params);
				const driver = this.dispatcher.core.store.driver;
				const count = await countPurgeable(driver, scope);
				const challenge = await secondConfirmation(ctx, {
					action: "dispatcher.purge",
					object: purgeObject(scope),
					summary: `Deletes ${count} finished task${count === 1 ? "" : "s"} (${scope.statuses.join(", ")}) older than ${new Date(scope.before).toISOString()}, and their output`
				});
				if (challenge) return challenge;
				return { deleted: await purgeTasks(driver, scope) };
			}
		},

		/** A gateway announces a new terminal session: hand it its queue. */
		connected: {
			visibility: "public",
			params: connectedParams,
			async handler(this: DispatcherThis, ctx: Context<Presence>) {
				// Tasks delivered to an older session (on a gateway that died, say) come back first.
				await this.dispatcher.connects.enter(ctx.params);
				return { ok: true };
			}
		},

		/** Drains a terminal's queue on this replica, its owner (called by the other replicas). */
		drain: {
			visibility: "public",
			params: { terminalId: "string" },
			async handler(this: DispatcherThis, ctx: Context<{ terminalId: string }>) {
				await this.dispatcher.routing.drainAsked(ctx.params.terminalId);
				return { ok: true };
			}
		},

		/** A gateway's batch of `ack`s and `result`s, sent to the owner of their terminals: one answer each. */
		replies: {
			visibility: "public",
			params: {
				replies: {
					type: "array",
					max: 10_000,
					items: {
						type: "multi",
						rules: [
							{
								type: "object",
								strict: true,
								props: { kind: { type: "equal", value: "ack" }, ...fieldsOf(ackParams) }
							},
							{
								type: "object",
								strict: true,
								props: { kind: { type: "equal", value: "result" }, ...fieldsOf(resultParams) }
							}
						]
					}
				}
			},
			handler(this: DispatcherThis, ctx: Context<RepliesParams>): Promise<ReplyAnswer[]> {
				return this.dispatcher.replies.batch(ctx.params.replies);
			}
		},

		/** Submits forwarded by another replica to this one, the owner of their terminals. */
		submitOwned: {
			visibility: "public",
			params: {
				tasks: { type: "array", max: 5000, items: { type: "object", strict: true, props: taskBodyProps } },
				principal: { type: "object", optional: true }
			},
			handler(this: DispatcherThis, ctx: Context<{ tasks: SubmitParams[]; principal?: Principal }>) {
				return this.dispatcher.admission.submitBatch(ctx.params.tasks, ctx.params.principal, true);
			}
		},

		/** A session closed: what it held but had not acknowledged goes back to the queue. */
		disconnected: {
			visibility: "public",
			params: { terminalId: "string", sessionId: "string" },
			async handler(this: DispatcherThis, ctx: Context<{ terminalId: string; sessionId: string }>) {
				await this.dispatcher.recovery.returnDelivered(ctx.params.terminalId);
				return { ok: true };
			}
		}
	},
	events: {
		"terminal.connected"(this: DispatcherThis, ctx: Context<TerminalConnectedEvent>) {
			this.dispatcher?.core.presence.set(ctx.params);
		},
		"terminal.disconnected"(this: DispatcherThis, ctx: Context<TerminalDisconnectedEvent>) {
			this.dispatcher?.core.presence.remove(ctx.params.terminalId, ctx.params.sessionId);
		},
		/** Enabled, disabled, relabelled, key rotated: its record is fetched again when next needed. */
		"terminal.updated"(this: DispatcherThis, ctx: Context<TerminalUpdatedEvent>) {
			this.dispatcher?.forgetTerminal(ctx.params.terminalId);
		},
		"terminal.revoked"(this: DispatcherThis, ctx: Context<{ terminalId: string }>) {
			this.dispatcher?.forgetTerminal(ctx.params.terminalId);
		},
		/** Replicas came or went: ownership of terminals moves with them. */
		"$services.changed"(this: DispatcherThis) {
			if (!this.dispatcher) return;
			this.dispatcher.setOwners(dispatcherNodes(this));
			void this.learnGateways();
		},
		/** A node died: its terminals are gone, and the tasks they held but had not acked come back. */
		async "$node.disconnected"(this: DispatcherThis, ctx: Context<{ node: { id: string } }>) {
			if (!this.dispatcher) return;
			this.dispatcher.core.presence.removeNode(ctx.params.node.id);
			this.gatewaysKnown.delete(ctx.params.node.id);
			this.dispatcher.setOwners(dispatcherNodes(this));
			await this.dispatcher.recovery
				.recoverDelivered(this.dispatcher.core.owners.takeDeparture())
				.catch(err => this.logger.warn("Recovery after a node left failed", err));
		}
	},
	methods: {
		/** Sessions of gateway nodes this replica has not heard from since they (re)appeared. */
		learnGateways(this: DispatcherThis) {
			return learnGateways(this.broker, this.dispatcher, this.gatewaysKnown);
		}
	},
	created(this: DispatcherThis) {
		this.gatewaysKnown = new Set();
	},
	async started(this: DispatcherThis) {
		const metrics = dispatcherMetrics(this.broker.metrics);
		const store = await openStore(this.broker, this.settings, this.model, this.logger, metrics.onCommit);
		this.store = store;
		const ports = { ports: this.broker, logger: this.logger, settings: this.settings };
		this.dispatcher = new Dispatcher({ ...ports, store, metrics: metrics.tasks, keyring: this.keyring });
		store.seedFrom(() => this.dispatcher.core.rows.values());
		this.dispatcher.setOwners(dispatcherNodes(this));
		// Who is connected now; the terminal.* events keep it current from here on.
		this.dispatcher.core.presence.load(await readAll<Presence>(this.broker, "cache.presenceList"));
		await this.learnGateways();
		await this.dispatcher.recovery.recoverDelivered();
		this.sweepTimer = setInterval(() => void this.dispatcher.deadlines.sweep(), this.settings.sweepInterval);
		this.depthTimer = watchQueueDepth(store, metrics.tasks, this.settings.queueDepthInterval, this.logger);
		this.startResealing(() => [taskResealTarget(store, this.keyring)]);
		this.unwatch = followTransport(
			this.broker,
			() => this.dispatcher,
			() => {
				this.gatewaysKnown.clear();
				return this.learnGateways();
			}
		);
	},
	async stopped(this: DispatcherThis) {
		clearInterval(this.sweepTimer);
		clearInterval(this.depthTimer);
		this.unwatch?.();
		// Graceful stop: a running sweep and the drains under way finish their writes before the
		// database closes; what they have not started, the other replicas own from now on.
		await this.dispatcher?.idle(10_000);
		await this.dispatcher?.core.store.close();
	}
};

export default DispatcherService;
