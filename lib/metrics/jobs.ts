/** The scheduler's series: every fire time's ledger outcome, and how late the fired ones were. */
import type { MetricRegistry, MetricTypes } from "moleculer";
import { LabelCache } from "./labels.ts";
import { series } from "./series.ts";

export interface JobMetricsOptions {
	/** Adds a `job` label (the job id) to the fires: one series per job. @defaultValue false */
	jobLabels?: boolean;
}

export class JobMetrics {
	private readonly fires: MetricTypes.Counter | null;
	private readonly lateness: MetricTypes.Histogram | null;
	private readonly perJob: boolean;
	private readonly byOutcome = new LabelCache((outcome: string) => ({ outcome }));

	constructor(registry: MetricRegistry, options: JobMetricsOptions = {}) {
		this.perJob = options.jobLabels ?? false;
		this.fires = series(registry, "tern_job_fires_total", this.perJob ? ["job"] : []);
		this.lateness = series(registry, "tern_job_fire_lateness_seconds");
	}

	/** A fire time settled; `latenessMs` when it fired. */
	fire(jobId: string, outcome: string, latenessMs: number | null): void {
		if (!this.fires) return;
		const labels = this.byOutcome.get(outcome);
		this.fires.increment(this.perJob ? { ...labels, job: jobId } : labels);
		if (latenessMs !== null) this.lateness!.observe(Math.max(0, latenessMs) / 1000);
	}
}
