/**
 * A rule body (POST, PUT) made into a row, and checked against what the body alone cannot show:
 * that the channels it names exist, and that a built-in rule keeps its name and signal.
 */
import type { AlertRuleRow, ChannelRow } from "../../models/alert.model.ts";
import type { AlertRuleBody } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";

/** Defaults of a rule created without them. */
export const RULE_DEFAULTS = { enabled: true, severity: "warning", window: 300, for: 0, repeatInterval: 3600 } as const;

export function newRuleRow(body: AlertRuleBody, now: number): AlertRuleRow {
	return {
		id: uuidv7(now),
		name: body.name,
		builtin: false,
		enabled: body.enabled ?? RULE_DEFAULTS.enabled,
		severity: body.severity ?? RULE_DEFAULTS.severity,
		metric: body.metric,
		condition: body.condition,
		threshold: body.threshold,
		window: body.window ?? RULE_DEFAULTS.window,
		for: body.for ?? RULE_DEFAULTS.for,
		matchers: JSON.stringify(body.matchers ?? {}),
		labels: JSON.stringify(body.labels ?? {}),
		channels: JSON.stringify(body.channels ?? []),
		repeatInterval: body.repeatInterval ?? RULE_DEFAULTS.repeatInterval,
		escalation: body.escalation ? JSON.stringify(body.escalation) : null,
		createdAt: now,
		updatedAt: now
	};
}

/** The columns a PUT changes; what it leaves out keeps its value. */
export function ruleChanges(body: Partial<AlertRuleBody>, base: AlertRuleRow, now: number): Partial<AlertRuleRow> {
	if (base.builtin && body.name !== undefined && body.name !== base.name)
		throw Errors.builtinRule(base.id, "its name cannot change");
	if (base.builtin && body.metric !== undefined && body.metric !== base.metric)
		throw Errors.builtinRule(base.id, "its metric cannot change");
	const changes: Partial<AlertRuleRow> = { updatedAt: now };
	for (const key of [
		"name",
		"enabled",
		"severity",
		"metric",
		"condition",
		"threshold",
		"window",
		"for",
		"repeatInterval"
	] as const)
		if (body[key] !== undefined) (changes as Record<string, unknown>)[key] = body[key];
	if (body.matchers !== undefined) changes.matchers = JSON.stringify(body.matchers);
	if (body.labels !== undefined) changes.labels = JSON.stringify(body.labels);
	if (body.channels !== undefined) changes.channels = JSON.stringify(body.channels);
	if (body.escalation !== undefined) changes.escalation = body.escalation ? JSON.stringify(body.escalation) : null;
	return changes;
}

/** 422 naming `channels` (or `escalation.channels`) when the body names a channel that does not exist. */
export function checkChannelIds(body: Partial<AlertRuleBody>, channels: ChannelRow[]): void {
	const known = new Set(channels.map(c => c.id));
	const lists: [string, string[] | undefined][] = [
		["channels", body.channels],
		["escalation.channels", body.escalation?.channels]
	];
	for (const [field, ids] of lists) {
		const unknown = (ids ?? []).filter(id => !known.has(id));
		if (unknown.length === 0) continue;
		const message = `The '${field}' field names unknown channel(s) ${unknown.map(id => `'${id}'`).join(", ")}`;
		throw Errors.validation(message, [{ type: "channelUnknown", field, message, actual: unknown.join(", ") }]);
	}
}

/** The rules that name a channel, in `channels` or in their escalation. */
export function rulesNaming(rules: AlertRuleRow[], channelId: string): string[] {
	return rules
		.filter(rule => {
			const escalation = rule.escalation ? (JSON.parse(rule.escalation) as { channels: string[] }) : null;
			return (
				(JSON.parse(rule.channels) as string[]).includes(channelId) || Boolean(escalation?.channels.includes(channelId))
			);
		})
		.map(rule => rule.id);
}
