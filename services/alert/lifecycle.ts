/**
 * An alert's lifecycle as one pure function: given the open alert of a series (or none), what
 * the monitor observed of it now (or nothing: its condition no longer holds), the rule and the
 * time, what happens next. No clock, no database: the evaluator (evaluate.ts) applies the
 * decision with a compare-and-set write, so that only one of several replicas acts on it.
 *
 * ```
 *  active, none open ──▶ pending ──held `for` s──▶ firing ──every repeatInterval s──▶ "repeat"
 *          (for = 0: firing at once)                 │  └─escalation.after s, unacknowledged──▶ "escalation" (once)
 *  not active: pending ──▶ resolved (nothing sent);  firing ──▶ resolved + "resolved" to the channels told
 * ```
 * An acknowledged alert gets no more reminders and no escalation; it still resolves.
 */
import type { AlertStatus, Escalation } from "../../lib/contracts.ts";

/** What the lifecycle reads of an open alert (a resolved one counts as none). */
export interface OpenAlert {
	status: AlertStatus;
	startedAt: number;
	firingAt: number | null;
	acknowledgedAt: number | null;
	lastNotifiedAt: number | null;
	escalatedAt: number | null;
}

/** What the lifecycle reads of a rule; durations in seconds. */
export interface RuleTiming {
	for: number;
	repeatInterval: number;
	escalation: Escalation | null;
}

export type Decision =
	/** Open a new alert, pending since `at`; `fire`: straight to firing (for = 0), notifying "firing". */
	| { kind: "create"; fire: boolean }
	/** Pending long enough: firing, notify "firing". */
	| { kind: "fire" }
	/** Firing, unacknowledged, repeatInterval since the last notice: notify "repeat". */
	| { kind: "remind" }
	/** Firing, unacknowledged, escalation.after since it fired: notify "escalation" to the escalation channels. */
	| { kind: "escalate" }
	/** Cleared. `notify`: it had fired, so the channels told hear "resolved". */
	| { kind: "resolve"; notify: boolean }
	| { kind: "nothing" };

const S = 1000;

export function decide(alert: OpenAlert | null, active: boolean, rule: RuleTiming, now: number): Decision {
	const open = alert?.status === "resolved" ? null : alert;
	if (!open) return active ? { kind: "create", fire: rule.for <= 0 } : { kind: "nothing" };
	if (!active) return { kind: "resolve", notify: open.status === "firing" };
	if (open.status === "pending") return now - open.startedAt >= rule.for * S ? { kind: "fire" } : { kind: "nothing" };
	if (open.acknowledgedAt !== null) return { kind: "nothing" };
	const firingAt = open.firingAt ?? open.startedAt;
	const escalation = rule.escalation;
	if (escalation && escalation.channels.length > 0 && open.escalatedAt === null && now - firingAt >= escalation.after * S)
		return { kind: "escalate" };
	const last = open.lastNotifiedAt ?? firingAt;
	if (rule.repeatInterval > 0 && now - last >= rule.repeatInterval * S) return { kind: "remind" };
	return { kind: "nothing" };
}
