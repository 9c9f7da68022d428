/**
 * Moleculer's Prometheus reporter without its own HTTP server: Tern serves the text itself (the
 * api's `GET /metrics`, the health server's), so a node opens no extra port and one process
 * serves one set of metrics on the ports it already has.
 */
import Moleculer, { type MetricRegistry, type ServiceBroker } from "moleculer";

/** The content type Prometheus's text exposition format is served with. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Registry = MetricRegistry & {
	reporter?: unknown[];
	store: Map<string, { name: string; type: string; snapshot(): unknown[] }>;
};

export class TernPrometheusReporter extends Moleculer.MetricReporters.Prometheus {
	/** The base sets them in its init (`namespace`, `nodeID`); they are missing from its typings. */
	defaultLabels: Record<string, unknown> | undefined;

	/** As the base's, without creating or listening on a server. */
	init(registry: MetricRegistry): void {
		// The grandparent's init: registry, broker and logger, nothing more.
		Moleculer.MetricReporters.Base.prototype.init.call(this, registry);
		const labels = this.opts.defaultLabels;
		this.defaultLabels = typeof labels === "function" ? labels.call(this, registry) : labels;
	}

	/**
	 * As the base's, except that a histogram without quantiles also gets its `_sum` and `_count`
	 * (the base writes them only beside quantiles, and Prometheus's rate() of a mean needs them).
	 */
	generatePrometheusResponse(): string {
		const text = super.generatePrometheusResponse();
		// Each item's `+Inf` bucket line → its _sum and _count, written right after it.
		const after = new Map<string, string>();
		for (const metric of (this.registry as Registry).store.values()) {
			if (metric.type !== "histogram" || (metric as { quantiles?: unknown }).quantiles) continue;
			if (!this.matchMetricName(metric.name)) continue;
			const name = this.formatMetricName(metric.name).replace(/[.-]/g, "_");
			for (const item of metric.snapshot() as { labels: Record<string, unknown>; sum: number; count: number }[]) {
				const labels = this.labelsToStr(item.labels);
				const inf = `${name}_bucket${this.labelsToStr(item.labels, { le: "+Inf" })} ${item.count}`;
				after.set(inf, `${inf}\n${name}_sum${labels} ${item.sum}\n${name}_count${labels} ${item.count}`);
			}
		}
		if (after.size === 0) return text;
		return text
			.split("\n")
			.map(line => after.get(line) ?? line)
			.join("\n");
	}

	/** Nothing to close. */
	stop(): Promise<void> {
		return Promise.resolve();
	}
}

/** The node's metrics as Prometheus text, or null when metrics are off. */
export function renderMetrics(broker: ServiceBroker): string | null {
	if (!broker.isMetricsEnabled()) return null;
	const reporters = (broker.metrics as Registry).reporter ?? [];
	const reporter = reporters.find(r => r instanceof TernPrometheusReporter);
	return reporter ? reporter.generatePrometheusResponse() : null;
}
