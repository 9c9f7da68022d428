/**
 * Which alerts a silence covers, as pure functions. A silence names labels; it covers an alert
 * that carries every one of them (with the same value) while it is active.
 */
import type { Labels, Severity } from "../../lib/contracts.ts";

export interface SilenceLike {
	matchers: Labels;
	endsAt: number;
}

/**
 * The labels a silence is matched against: the alert's own (its series' labels and the rule's),
 * then the rule's name as `alertname`, its id as `ruleId` and the severity, which win on a clash.
 */
export function silenceLabels(
	alert: { labels: Labels; severity: Severity },
	rule: { id: string; name: string; labels: Labels }
): Labels {
	return { ...alert.labels, ...rule.labels, alertname: rule.name, ruleId: rule.id, severity: alert.severity };
}

export function isActive(silence: SilenceLike, now: number): boolean {
	return silence.endsAt > now;
}

/** A silence with no matchers covers nothing (the API refuses one): it would silence every alert. */
export function covers(silence: SilenceLike, labels: Labels, now: number): boolean {
	const matchers = Object.entries(silence.matchers);
	return isActive(silence, now) && matchers.length > 0 && matchers.every(([key, value]) => labels[key] === value);
}

export function isSilenced(silences: SilenceLike[], labels: Labels, now: number): boolean {
	return silences.some(silence => covers(silence, labels, now));
}
