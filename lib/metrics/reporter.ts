/**
 * Moleculer's Prometheus reporter without its own HTTP server: Tern serves the text itself (the
 * api's `GET /metrics`, the health server's), so a node opens no extra port and one process
 * serves one set of metrics on the ports it already has.
 */
import Moleculer, { type MetricRegistry, type ServiceBroker } from "moleculer";

/** The content type Prometheus's text exposition format is served with. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Registry = MetricRegistry & { reporter?: unknown[] };

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
