/**
 * Every series Tern exports, in one place: name, help, labels and buckets. The helpers beside
 * this file (terminals.ts, tasks.ts, jobs.ts, commits.ts) register them and are what services
 * call; nothing else names a `tern_` series.
 *
 * Cardinality: no label takes task ids, terminal ids or job ids unless a setting asks
 * (`metricsTerminalLabels`, `metricsJobLabels`); task types are bounded (see BoundedLabel).
 */
import type { MetricRegistry, MetricTypes } from "moleculer";

/** 1 ms to 10 min: a task's phases span from a push on an idle terminal to a long script. */
export const PHASE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Writes per group commit. */
export const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
/** One commit: an fsync on a disk, a round trip to MySQL. */
export const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface SeriesDef {
	type: "counter" | "gauge" | "histogram";
	description: string;
	labelNames: readonly string[];
	buckets?: number[];
}

export const SERIES = {
	tern_terminals_online: {
		type: "gauge",
		description: "Terminal sessions connected to this gateway node, by transport",
		labelNames: ["transport"]
	},
	tern_terminal_connects_total: {
		type: "counter",
		description: "Terminal sessions opened on this gateway node",
		labelNames: ["transport"]
	},
	tern_terminal_disconnects_total: {
		type: "counter",
		description: "Terminal sessions ended on this gateway node, by transport and why",
		labelNames: ["transport", "reason"]
	},
	tern_gateway_handshakes_refused_total: {
		type: "counter",
		description:
			"Terminal handshakes this gateway refused with GATEWAY_BUSY, by why: busy (its admission limit) or partition",
		labelNames: ["reason"]
	},
	tern_tasks_total: {
		type: "counter",
		description: "Tasks entering a state (PENDING at submit, then each change), by state and task type",
		labelNames: ["status", "type"]
	},
	tern_task_transitions_total: {
		type: "counter",
		description: "Task state changes written by this dispatcher",
		labelNames: ["from", "to"]
	},
	tern_task_phase_seconds: {
		type: "histogram",
		description:
			"Time a task spends in a phase: queue (PENDING→DELIVERED), start (DELIVERED→PROCESSING), run (PROCESSING→end of the attempt), total (submit→final)",
		labelNames: ["phase"],
		buckets: PHASE_BUCKETS
	},
	tern_task_timeouts_total: {
		type: "counter",
		description: "Attempts ended by a deadline: ack (not acknowledged), run (not finished), ttl (never delivered)",
		labelNames: ["kind"]
	},
	tern_task_failures_total: {
		type: "counter",
		description: "Attempts that failed, by category: task_error (the terminal reported it) or Tern's error type",
		labelNames: ["category"]
	},
	tern_task_retries_total: {
		type: "counter",
		description: "Retries scheduled after a failed or timed-out attempt",
		labelNames: []
	},
	tern_queue_depth: {
		type: "gauge",
		description: "PENDING tasks by priority (the whole queue, read from the database every few seconds)",
		labelNames: ["priority"]
	},
	tern_job_fires_total: {
		type: "counter",
		description: "Fire times of scheduled jobs, by ledger outcome",
		labelNames: ["outcome"]
	},
	tern_job_fire_lateness_seconds: {
		type: "histogram",
		description: "How late a job fired after its fire time",
		labelNames: [],
		buckets: PHASE_BUCKETS
	},
	tern_commit_batch_size: {
		type: "histogram",
		description: "Writes carried by one group commit of the dispatcher",
		labelNames: [],
		buckets: BATCH_BUCKETS
	},
	tern_alerts_firing: {
		type: "gauge",
		description: "Alerts firing now, cluster-wide (as the monitor read them on its last tick)",
		labelNames: []
	},
	tern_alert_notifications_total: {
		type: "counter",
		description: "Notification attempts sent by this alert node, by channel type and outcome (sent, failed, silenced)",
		labelNames: ["channel", "outcome"]
	},
	tern_commit_seconds: {
		type: "histogram",
		description: "Time one group commit of the dispatcher takes",
		labelNames: [],
		buckets: COMMIT_BUCKETS
	},
	tern_storage_degraded: {
		type: "gauge",
		description: "1 while this dispatcher runs in degraded mode (its database unreachable), else 0",
		labelNames: []
	},
	tern_journal_records_total: {
		type: "counter",
		description: "Changes written to this dispatcher's local journal while its database was unreachable",
		labelNames: []
	},
	tern_journal_replayed_total: {
		type: "counter",
		description: "Journalled changes replayed into the database, by outcome (applied, skipped: already there, conflict)",
		labelNames: ["outcome"]
	}
} as const satisfies Record<string, SeriesDef>;

export type SeriesName = keyof typeof SERIES;

type MetricOf<T extends SeriesDef["type"]> = T extends "histogram"
	? MetricTypes.Histogram
	: T extends "gauge"
		? MetricTypes.Gauge
		: MetricTypes.Counter;

/**
 * The series, registered once per broker (a second caller gets the same one), with extra label
 * names when a setting asks for them; null when metrics are off.
 */
export function series<N extends SeriesName>(
	registry: MetricRegistry,
	name: N,
	extraLabels: readonly string[] = []
): MetricOf<(typeof SERIES)[N]["type"]> | null {
	if (!registry.isEnabled()) return null;
	const existing = registry.getMetric(name);
	if (existing) return existing as MetricOf<(typeof SERIES)[N]["type"]>;
	const def: SeriesDef = SERIES[name];
	return registry.register({
		name,
		type: def.type,
		description: def.description,
		labelNames: [...def.labelNames, ...extraLabels],
		...(def.buckets ? { buckets: def.buckets } : {})
	} as Parameters<MetricRegistry["register"]>[0]) as MetricOf<(typeof SERIES)[N]["type"]>;
}
