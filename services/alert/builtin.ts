/**
 * The rules every Tern starts with, seeded on start under fixed ids. Seeding inserts a missing
 * rule and never touches one that exists, so that an operator's edits (enabled, threshold,
 * channels, …) survive restarts. docs/alerts.md lists them.
 */
import type { AlertRuleRow } from "../../models/alert.model.ts";
import type { Condition, Severity, SignalName } from "../../lib/contracts.ts";

interface Builtin {
	id: string;
	name: SignalName;
	metric: SignalName;
	condition: Condition;
	threshold: number;
	window: number;
	severity: Severity;
	matchers?: Record<string, string>;
}

export const BUILTIN_RULES: readonly Builtin[] = [
	{
		id: "builtin-terminals-drop",
		name: "terminals_online_drop",
		metric: "terminals_online_drop",
		condition: ">=",
		threshold: 0.5,
		window: 300,
		severity: "critical"
	},
	{
		id: "builtin-task-timeout-rate",
		name: "task_timeout_rate",
		metric: "task_timeout_rate",
		condition: ">",
		threshold: 0.05,
		window: 300,
		severity: "warning"
	},
	{
		id: "builtin-task-failure-rate",
		name: "task_failure_rate",
		metric: "task_failure_rate",
		condition: ">",
		threshold: 0.2,
		window: 300,
		severity: "warning"
	},
	{
		id: "builtin-job-fire-problems",
		name: "job_fire_problems",
		metric: "job_fire_problems",
		condition: ">=",
		threshold: 1,
		window: 600,
		severity: "warning"
	},
	// The signal itself covers only terminals labelled `critical: "true"` (lib/contracts/alerts.ts).
	{
		id: "builtin-terminal-offline",
		name: "terminal_offline_seconds",
		metric: "terminal_offline_seconds",
		condition: ">",
		threshold: 300,
		window: 300,
		severity: "critical"
	},
	{
		id: "builtin-node-down",
		name: "node_down",
		metric: "node_down",
		condition: ">=",
		threshold: 1,
		window: 300,
		severity: "critical"
	},
	{
		id: "builtin-database-latency",
		name: "database_latency_seconds",
		metric: "database_latency_seconds",
		condition: ">",
		threshold: 1,
		window: 300,
		severity: "critical"
	},
	{
		id: "builtin-storage-degraded",
		name: "storage_degraded",
		metric: "storage_degraded",
		condition: ">=",
		threshold: 1,
		window: 300,
		severity: "critical"
	},
	{
		id: "builtin-queue-oldest",
		name: "queue_oldest_seconds",
		metric: "queue_oldest_seconds",
		condition: ">",
		threshold: 600,
		window: 300,
		severity: "warning"
	}
];

/** Defaults of every built-in rule: fires at once, reminds hourly, no escalation, every enabled channel. */
export const BUILTIN_DEFAULTS = { for: 0, repeatInterval: 3600, escalation: null, channels: [] as string[] };

export function builtinRows(now: number): AlertRuleRow[] {
	return BUILTIN_RULES.map(rule => ({
		id: rule.id,
		name: rule.name,
		builtin: true,
		enabled: true,
		severity: rule.severity,
		metric: rule.metric,
		condition: rule.condition,
		threshold: rule.threshold,
		window: rule.window,
		for: BUILTIN_DEFAULTS.for,
		matchers: JSON.stringify(rule.matchers ?? {}),
		labels: "{}",
		channels: JSON.stringify(BUILTIN_DEFAULTS.channels),
		repeatInterval: BUILTIN_DEFAULTS.repeatInterval,
		escalation: null,
		createdAt: now,
		updatedAt: now
	}));
}
