/** Rows as the API shows them: times as ISO strings, JSON parsed, secrets "***". */
import type {
	AlertRuleView,
	AlertView,
	ChannelView,
	Escalation,
	Labels,
	NotificationView,
	SilenceView
} from "../../lib/contracts.ts";
import type { AlertRow, AlertRuleRow, ChannelRow, NotificationRow, SilenceRow } from "../../models/alert.model.ts";

export const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export function toRuleView(row: AlertRuleRow): AlertRuleView {
	return {
		id: row.id,
		name: row.name,
		builtin: row.builtin,
		enabled: row.enabled,
		severity: row.severity,
		metric: row.metric,
		condition: row.condition,
		threshold: row.threshold,
		window: row.window,
		for: row.for,
		matchers: JSON.parse(row.matchers) as Labels,
		labels: JSON.parse(row.labels) as Labels,
		channels: JSON.parse(row.channels) as string[],
		repeatInterval: row.repeatInterval,
		escalation: row.escalation ? (JSON.parse(row.escalation) as Escalation) : null,
		createdAt: iso(row.createdAt),
		updatedAt: iso(row.updatedAt)
	};
}

export function toAlertView(row: AlertRow): AlertView {
	return {
		id: row.id,
		ruleId: row.ruleId,
		ruleName: row.ruleName,
		status: row.status,
		severity: row.severity,
		labels: JSON.parse(row.labels) as Labels,
		fingerprint: row.fingerprint,
		value: row.value,
		summary: row.summary,
		startedAt: iso(row.startedAt),
		firingAt: isoOrNull(row.firingAt),
		resolvedAt: isoOrNull(row.resolvedAt),
		acknowledgedAt: isoOrNull(row.acknowledgedAt),
		acknowledgedBy: row.acknowledgedBy,
		lastNotifiedAt: isoOrNull(row.lastNotifiedAt),
		escalatedAt: isoOrNull(row.escalatedAt)
	};
}

export function toNotificationView(row: NotificationRow): NotificationView {
	return {
		id: row.id,
		alertId: row.alertId,
		channelId: row.channelId,
		kind: row.kind,
		status: row.status,
		attempts: row.attempts,
		lastError: row.lastError,
		createdAt: iso(row.createdAt),
		sentAt: isoOrNull(row.sentAt)
	};
}

/** @param config the channel's config with its secrets already "***" */
export function toChannelView(row: ChannelRow, config: ChannelView["config"]): ChannelView {
	return {
		id: row.id,
		name: row.name,
		type: row.type,
		config,
		enabled: row.enabled,
		createdAt: iso(row.createdAt),
		updatedAt: iso(row.updatedAt)
	};
}

export function toSilenceView(row: SilenceRow, now: number): SilenceView {
	return {
		id: row.id,
		matchers: JSON.parse(row.matchers) as Labels,
		endsAt: iso(row.endsAt),
		comment: row.comment,
		createdBy: row.createdBy,
		createdAt: iso(row.createdAt),
		active: row.endsAt > now
	};
}
