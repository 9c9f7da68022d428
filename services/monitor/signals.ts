/**
 * The signals rules judge, computed from one snapshot of the cluster and what the monitor has
 * counted: pure functions, so that each built-in alert can be tested without a broker.
 */
import type { AlertRuleView, Condition, Labels, Observation, SignalName } from "../../lib/contracts.ts";
import type { EventWindow, SampleHistory } from "./windows.ts";

export type Counted = "submitted" | "completed" | "failed" | "timedOut" | "ended";

/** What one tick read from the services; a part that could not be read is null (unknown, not zero). */
export interface Snapshot {
	at: number;
	terminals: {
		online: number;
		offline: number;
		disabled: number;
		/** Enabled terminals labelled `critical: "true"` that are offline, with when they were last seen. */
		criticalOffline: { id: string; since: number }[];
	} | null;
	tasks: { byStatus: Record<string, number>; oldestPendingAt: number | null } | null;
	database: { latencySeconds: number; error: string | null } | null;
	/** Nodes that left without saying goodbye and are not back. */
	nodesDown: { nodeID: string; since: number }[];
	/** Dispatchers in degraded mode; null when their storage could not be read. */
	degraded: { nodeID: string; reason: string | null; since: string | null; journalled: number }[] | null;
}

/** What the monitor remembers between ticks. */
export interface Memory {
	counts: EventWindow<Counted>;
	online: SampleHistory;
	/** Fires that went wrong (MISSED, NO_TERMINAL), newest last, an hour of them. */
	fireProblems: { jobId: string; outcome: string; at: number }[];
}

export interface SignalOptions {
	/** A rate is judged only once this many tasks ended within its window. @defaultValue 10 */
	minTasksForRate: number;
}

export interface Series {
	labels: Labels;
	value: number;
	summary: string;
}

const percent = (ratio: number) => `${Math.round(ratio * 1000) / 10}%`;

function rate(memory: Memory, kind: "timedOut" | "failed", window: number, now: number, options: SignalOptions): Series[] {
	const ended = memory.counts.sum("ended", window, now);
	const hits = memory.counts.sum(kind, window, now);
	const value = ended >= options.minTasksForRate && ended > 0 ? hits / ended : 0;
	const what = kind === "timedOut" ? "timed out" : "failed";
	return [
		{ labels: {}, value, summary: `${hits} of ${ended} tasks that ended within ${window} s ${what} (${percent(value)})` }
	];
}

/** The series of `rule`'s signal now, or null when its source could not be read this tick. */
export function seriesOf(rule: AlertRuleView, snap: Snapshot, memory: Memory, options: SignalOptions): Series[] | null {
	const now = snap.at;
	const metric: SignalName = rule.metric;
	switch (metric) {
		case "terminals_online":
			if (!snap.terminals) return null;
			return [{ labels: {}, value: snap.terminals.online, summary: `${snap.terminals.online} terminals online` }];
		case "terminals_online_drop": {
			if (!snap.terminals) return null;
			const highest = memory.online.max(rule.window, now) ?? snap.terminals.online;
			const value = highest > 0 ? Math.max(0, highest - snap.terminals.online) / highest : 0;
			const summary = `Online terminals fell from ${highest} to ${snap.terminals.online} (${percent(value)}) within ${rule.window} s`;
			return [{ labels: {}, value, summary }];
		}
		case "terminal_offline_seconds":
			if (!snap.terminals) return null;
			return snap.terminals.criticalOffline.map(t => {
				const seconds = Math.max(0, Math.round((now - t.since) / 1000));
				return {
					labels: { terminalId: t.id },
					value: seconds,
					summary: `Critical terminal '${t.id}' offline for ${seconds} s`
				};
			});
		case "task_timeout_rate":
			return rate(memory, "timedOut", rule.window, now, options);
		case "task_failure_rate":
			return rate(memory, "failed", rule.window, now, options);
		case "tasks_pending": {
			if (!snap.tasks) return null;
			const pending = snap.tasks.byStatus.PENDING ?? 0;
			return [{ labels: {}, value: pending, summary: `${pending} tasks pending` }];
		}
		case "queue_oldest_seconds": {
			if (!snap.tasks) return null;
			const oldest = snap.tasks.oldestPendingAt;
			const value = oldest === null ? 0 : Math.max(0, Math.round((now - oldest) / 1000));
			return [{ labels: {}, value, summary: `The oldest pending task has waited ${value} s` }];
		}
		case "job_fire_problems": {
			const since = now - rule.window * 1000;
			const byKey = new Map<string, { jobId: string; outcome: string; n: number }>();
			for (const p of memory.fireProblems) {
				if (p.at < since) continue;
				const key = `${p.jobId}\u0000${p.outcome}`;
				const entry = byKey.get(key) ?? { jobId: p.jobId, outcome: p.outcome, n: 0 };
				entry.n++;
				byKey.set(key, entry);
			}
			return [...byKey.values()].map(p => ({
				labels: { jobId: p.jobId, outcome: p.outcome },
				value: p.n,
				summary: `Job '${p.jobId}': ${p.n} fire(s) ${p.outcome === "MISSED" ? "missed" : "found no terminal"} within ${rule.window} s`
			}));
		}
		case "node_down":
			return snap.nodesDown.map(n => ({
				labels: { nodeID: n.nodeID },
				value: 1,
				summary: `Node '${n.nodeID}' is down since ${new Date(n.since).toISOString()}`
			}));
		case "database_latency_seconds": {
			if (!snap.database) return null;
			const { latencySeconds, error } = snap.database;
			const summary = error
				? `The database is unreachable: ${error}`
				: `The database answered in ${Math.round(latencySeconds * 1000)} ms`;
			return [{ labels: {}, value: latencySeconds, summary }];
		}
		case "storage_degraded":
			if (!snap.degraded) return null;
			return snap.degraded.map(d => ({
				labels: { nodeID: d.nodeID },
				value: 1,
				summary: `Dispatcher '${d.nodeID}' runs in degraded mode since ${d.since}: ${d.reason} (${d.journalled} change(s) journalled)`
			}));
	}
}

export function holds(value: number, condition: Condition, threshold: number): boolean {
	switch (condition) {
		case ">":
			return value > threshold;
		case ">=":
			return value >= threshold;
		case "<":
			return value < threshold;
		case "<=":
			return value <= threshold;
		case "==":
			return value === threshold;
	}
}

/** A series' identity within its rule: its labels, sorted. */
export function fingerprintOf(labels: Labels): string {
	return Object.keys(labels)
		.sort()
		.map(key => `${key}=${labels[key]}`)
		.join(",");
}

/** The series of the rule whose condition holds now (matchers applied), or null when unknown. */
export function observe(rule: AlertRuleView, snap: Snapshot, memory: Memory, options: SignalOptions): Observation[] | null {
	const series = seriesOf(rule, snap, memory, options);
	if (series === null) return null;
	const matchers = Object.entries(rule.matchers ?? {});
	return series
		.filter(s => matchers.every(([key, value]) => s.labels[key] === value))
		.filter(s => holds(s.value, rule.condition, rule.threshold))
		.map(s => ({ fingerprint: fingerprintOf(s.labels), labels: s.labels, value: s.value, summary: s.summary }));
}
