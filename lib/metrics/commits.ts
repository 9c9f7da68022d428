/** The dispatcher's writes: its group commit (writes per commit, the time each takes) and its degraded mode. */
import type { MetricRegistry, MetricTypes } from "moleculer";
import { series } from "./series.ts";

export class CommitMetrics {
	private readonly size: MetricTypes.Histogram | null;
	private readonly time: MetricTypes.Histogram | null;

	constructor(registry: MetricRegistry) {
		this.size = series(registry, "tern_commit_batch_size");
		this.time = series(registry, "tern_commit_seconds");
	}

	/** One commit of `writes` statements that took `ms`. */
	committed(writes: number, ms: number): void {
		if (!this.size) return;
		this.size.observe(writes);
		this.time!.observe(ms / 1000);
	}
}

/** Degraded mode: whether it is on, and what went through the journal. */
export class StorageMetrics {
	private readonly degraded: MetricTypes.Gauge | null;
	private readonly journalled: MetricTypes.Counter | null;
	private readonly replayed: MetricTypes.Counter | null;

	constructor(registry: MetricRegistry) {
		this.degraded = series(registry, "tern_storage_degraded");
		this.journalled = series(registry, "tern_journal_records_total");
		this.replayed = series(registry, "tern_journal_replayed_total");
		this.degraded?.set(0);
	}

	setDegraded(on: boolean): void {
		this.degraded?.set(on ? 1 : 0);
	}

	journal(records: number): void {
		this.journalled?.increment(undefined, records);
	}

	replay(outcome: "applied" | "skipped" | "conflict", records: number): void {
		if (records > 0) this.replayed?.increment({ outcome }, records);
	}
}
