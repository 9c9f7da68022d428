/** The alerting series: what fires now (the monitor), and each notification attempt (the alert service). */
import type { MetricRegistry, MetricTypes } from "moleculer";
import { LabelCache } from "./labels.ts";
import { series } from "./series.ts";

export class AlertMetrics {
	private readonly firing: MetricTypes.Gauge | null;
	private readonly notifications: MetricTypes.Counter | null;
	private readonly labels = new LabelCache((key: string) => {
		const [channel, outcome] = key.split("/");
		return { channel, outcome };
	});

	constructor(registry: MetricRegistry) {
		this.firing = series(registry, "tern_alerts_firing");
		this.notifications = series(registry, "tern_alert_notifications_total");
	}

	firingNow(count: number): void {
		this.firing?.set(count);
	}

	/** One attempt to send through a channel of `type`. */
	notified(type: string, outcome: "sent" | "failed" | "silenced"): void {
		this.notifications?.increment(this.labels.get(`${type}/${outcome}`));
	}
}
