/**
 * The fire ledger's outcomes, written and announced in one place: every computed fire time
 * gets a row (FIRED, CAUGHT_UP, SKIPPED_OVERLAP, MISSED, PAUSED, NO_TERMINAL) and a `job.fire`
 * event.
 */
import type { ServiceBroker } from "moleculer";
import type { FireOutcome } from "../../models/job.model.ts";
import type { JobStore } from "./store.ts";
import type { FireEvent } from "../../lib/contracts.ts";
import type { JobMetrics } from "../../lib/metrics/jobs.ts";

export interface Fire {
	jobId: string;
	fireTime: number;
	outcome: FireOutcome;
	taskIds: string[];
	manual: boolean;
	firedAt: number | null;
	detail: string | null;
}

export class Ledger {
	private readonly broker: ServiceBroker;
	private readonly store: JobStore;
	private readonly metrics: JobMetrics;

	constructor(broker: ServiceBroker, store: JobStore, metrics: JobMetrics) {
		this.broker = broker;
		this.store = store;
		this.metrics = metrics;
	}

	/** A fire time passed unfired (MISSED, PAUSED): its row, unless it has one already. */
	async unfired(jobId: string, fireTime: number, outcome: FireOutcome, detail: string, now: number): Promise<void> {
		if (await this.store.record(jobId, fireTime, outcome, this.broker.nodeID, now, detail))
			this.announce({ jobId, fireTime, outcome, taskIds: [], manual: false, firedAt: null, detail });
	}

	/** A claimed fire that created no task (SKIPPED_OVERLAP, NO_TERMINAL). */
	async settleEmpty(
		jobId: string,
		fireTime: number,
		outcome: "SKIPPED_OVERLAP" | "NO_TERMINAL",
		detail: string,
		manual: boolean
	): Promise<void> {
		await this.store.settle(jobId, fireTime, { outcome, detail });
		this.announce({ jobId, fireTime, outcome, taskIds: [], manual, firedAt: null, detail });
	}

	/** A claimed fire that created its task(s). */
	async settleFired(fire: Fire & { firedAt: number }): Promise<void> {
		await this.store.settle(fire.jobId, fire.fireTime, fire);
		this.announce(fire);
	}

	/** Many plain fires of one tick, in one statement. */
	async settleFiredMany(firedAt: number, fires: { jobId: string; fireTime: number; taskIds: string[] }[]): Promise<void> {
		await this.store.settleMany("FIRED", firedAt, fires);
		for (const f of fires) this.metrics.fire(f.jobId, "FIRED", firedAt - f.fireTime);
		// An event nobody listens to still costs its broadcast: asked once per batch, not per fire.
		if (!this.broker.hasEventListener("job.fire")) return;
		for (const f of fires) this.announce({ ...f, outcome: "FIRED", manual: false, firedAt, detail: null }, true);
	}

	/** Counted and announced: every outcome but the batched FIRED ones (counted in settleFiredMany). */
	private announce(fire: Fire, counted = false): void {
		if (!counted) this.metrics.fire(fire.jobId, fire.outcome, fire.firedAt === null ? null : fire.firedAt - fire.fireTime);
		const event: FireEvent = {
			jobId: fire.jobId,
			fireTime: new Date(fire.fireTime).toISOString(),
			outcome: fire.outcome,
			taskIds: fire.taskIds,
			manual: fire.manual,
			lateness: fire.firedAt === null ? null : fire.firedAt - fire.fireTime,
			node: this.broker.nodeID,
			detail: fire.detail
		};
		void this.broker.broadcast("job.fire", event).catch(() => undefined);
	}
}
