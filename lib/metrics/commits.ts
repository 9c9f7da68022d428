/** The dispatcher's group commit: writes per commit and the time each commit takes. */
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
