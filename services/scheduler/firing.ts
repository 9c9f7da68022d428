/**
 * Firing: claim a fire time, apply the overlap policy, submit the task, settle the claim.
 *
 * Exactly once. A fire is claimed by inserting its (jobId, fireTime) ledger row: one insert
 * wins across all replicas. The claimant then submits the job's task with the idempotency key
 * `job:<jobId>:<fireTime>`, so that if it dies between the claim and the submit, whoever
 * completes the stale claim gets the same task, never a second one. The claim is settled with
 * the outcome and the task ids.
 */
import type { Logger } from "moleculer";
import type { SubmitResult } from "../../lib/contracts.ts";
import { noTerminalReason, type DispatcherClient } from "./dispatcher-client.ts";
import type { Ledger } from "./ledger.ts";
import type { Slots } from "./limit.ts";
import { decideOverlap } from "./overlap-policy.ts";
import type { RunBook } from "./runs.ts";
import type { JobStore } from "./store.ts";
import type { ArmedJob } from "./types.ts";

/** Fires claimed and submitted together. */
const BATCH_SIZE = 500;

const keyOf = (job: ArmedJob, fireTime: number) => `job:${job.row.id}:${fireTime}`;

export class Firer {
	private readonly nodeID: string;
	private readonly logger: Logger;
	private readonly store: JobStore;
	private readonly ledger: Ledger;
	private readonly dispatcher: DispatcherClient;
	private readonly runs: RunBook;
	private readonly slots: Slots;

	constructor(deps: {
		nodeID: string;
		logger: Logger;
		store: JobStore;
		ledger: Ledger;
		dispatcher: DispatcherClient;
		runs: RunBook;
		slots: Slots;
	}) {
		this.nodeID = deps.nodeID;
		this.logger = deps.logger;
		this.store = deps.store;
		this.ledger = deps.ledger;
		this.dispatcher = deps.dispatcher;
		this.runs = deps.runs;
		this.slots = deps.slots;
	}

	/**
	 * Plain fires that came due together go out in batches — one claim INSERT, one task INSERT,
	 * one ledger UPDATE per batch — so that a burst of thousands costs a few statements, not
	 * thousands.
	 */
	async fireMany(items: { job: ArmedJob; at: number }[]): Promise<void> {
		const failed = (item: { job: ArmedJob; at: number }) => (err: unknown) =>
			this.logger.error(`Fire of job ${item.job.row.id} at ${new Date(item.at).toISOString()} failed`, err);
		const settles: { settle: () => Promise<void>; first: { job: ArmedJob; at: number } }[] = [];
		const batches: Promise<void>[] = [];
		for (let i = 0; i < items.length; i += BATCH_SIZE) {
			const chunk = items.slice(i, i + BATCH_SIZE);
			batches.push(
				this.fireBatch(chunk).then(settle => void (settle && settles.push({ settle, first: chunk[0] })), failed(chunk[0]))
			);
		}
		// The ledger rows and events of a tick once all its tasks are in: settled as each batch's
		// tasks went in, they queued before the next batches' inserts and made those later.
		await Promise.all(batches);
		await Promise.all(settles.map(({ settle, first }) => settle().catch(failed(first))));
	}

	/** Claims a batch and submits the tasks of the fires it won; answers what settles them. */
	private async fireBatch(items: { job: ArmedJob; at: number }[]): Promise<(() => Promise<void>) | undefined> {
		return this.slots.run(async () => {
			const won = await this.store.claimMany(
				items.map(i => ({ jobId: i.job.row.id, fireTime: i.at })),
				this.nodeID,
				Date.now()
			);
			const mine = items.filter(i => won.has(`${i.job.row.id}:${i.at}`));
			if (mine.length === 0) return undefined;
			// If this fails, the claims stay CLAIMED and recovery completes each (same idempotency keys).
			const results = await this.dispatcher.submitMany(
				mine.map(i => ({ ...i.job.task, idempotencyKey: keyOf(i.job, i.at) }))
			);
			const firedAt = Date.now();
			const fired: { jobId: string; fireTime: number; taskIds: string[] }[] = [];
			const refused: { jobId: string; fireTime: number; detail: string }[] = [];
			for (const [k, { job, at }] of mine.entries()) {
				const result = results[k];
				if ("error" in result) {
					const reason = noTerminalReason(result.error);
					if (reason !== null) refused.push({ jobId: job.row.id, fireTime: at, detail: reason });
					continue; // otherwise left for recovery
				}
				const taskIds = result.taskIds ?? [result.taskId];
				fired.push({ jobId: job.row.id, fireTime: at, taskIds });
				// Followed at once: a task may end before its fire is settled.
				this.runs.begin(job, at, taskIds);
			}
			return async () => {
				for (const r of refused) await this.ledger.settleEmpty(r.jobId, r.fireTime, "NO_TERMINAL", r.detail, false);
				await this.ledger.settleFiredMany(firedAt, fired);
			};
		});
	}

	/** Claims (jobId, fireTime) and, if this replica won it, fires; null when it lost the claim. */
	async fireAt(
		job: ArmedJob,
		fireTime: number,
		outcome: "FIRED" | "CAUGHT_UP",
		detail: string | null,
		manual = false
	): Promise<string[] | null> {
		return this.slots.run(async () => {
			if (!(await this.store.claim(job.row.id, fireTime, this.nodeID, Date.now(), manual))) return null;
			return this.complete(job, fireTime, outcome, detail, manual);
		});
	}

	/** Settles a claimed fire: overlap policy, the task (idempotent per fire), the ledger row. */
	async complete(
		job: ArmedJob,
		fireTime: number,
		outcome: "FIRED" | "CAUGHT_UP",
		detail: string | null,
		manual: boolean
	): Promise<string[]> {
		const jobId = job.row.id;
		const overlap = decideOverlap(job.row.overlapPolicy, this.runs.running(job));
		if (overlap.action === "skip") {
			await this.ledger.settleEmpty(jobId, fireTime, "SKIPPED_OVERLAP", overlap.detail, manual);
			return [];
		}
		if (overlap.action === "replace") {
			for (const taskId of overlap.cancel) await this.dispatcher.cancel(taskId);
			detail = [detail, overlap.detail].filter(Boolean).join("; ");
		}
		let result: SubmitResult;
		try {
			result = await this.dispatcher.submit({ ...job.task, idempotencyKey: keyOf(job, fireTime) });
		} catch (err) {
			const reason = noTerminalReason(err as { type?: string; message?: string });
			if (reason === null) throw err; // the claim stays; recovery completes it
			await this.ledger.settleEmpty(jobId, fireTime, "NO_TERMINAL", reason, manual);
			return [];
		}
		const taskIds = result.taskIds ?? [result.taskId];
		const firedAt = Date.now();
		this.runs.begin(job, fireTime, taskIds);
		await this.ledger.settleFired({ jobId, fireTime, outcome, taskIds, manual, firedAt, detail });
		return taskIds;
	}
}
