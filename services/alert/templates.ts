/**
 * What a notification says, as pure functions: the one-line title (mail subject, SMS text), the
 * mail's text and HTML bodies, and `{{name}}` templates (an SMS gateway's body).
 */
import type { AlertView, NotificationKind } from "../../lib/contracts.ts";

/** What every channel sends: the alert as it is now, and why it is being sent. */
export interface Message {
	kind: NotificationKind;
	status: "firing" | "resolved";
	alert: AlertView;
	/** Epoch ms. */
	sentAt: number;
}

export function statusOf(kind: NotificationKind): "firing" | "resolved" {
	return kind === "resolved" ? "resolved" : "firing";
}

const KIND_TAGS: Record<NotificationKind, string> = {
	firing: "FIRING",
	repeat: "FIRING",
	escalation: "ESCALATED",
	resolved: "RESOLVED",
	test: "TEST"
};

/** `[FIRING critical] terminals_online_drop: 3 of 6 terminals went offline within 300 s` */
export function titleOf(message: Message): string {
	const { alert } = message;
	return `[${KIND_TAGS[message.kind]} ${alert.severity}] ${alert.ruleName}: ${alert.summary}`;
}

function details(message: Message): [string, string][] {
	const { alert } = message;
	const rows: [string, string][] = [
		["Status", message.status],
		["Severity", alert.severity],
		["Rule", alert.ruleName],
		["Summary", alert.summary],
		["Value", String(alert.value)],
		["Started", alert.startedAt]
	];
	if (alert.firingAt) rows.push(["Firing since", alert.firingAt]);
	if (alert.resolvedAt) rows.push(["Resolved", alert.resolvedAt]);
	if (alert.acknowledgedAt) rows.push(["Acknowledged", `${alert.acknowledgedAt} by ${alert.acknowledgedBy ?? "?"}`]);
	const labels = Object.entries(alert.labels);
	if (labels.length > 0) rows.push(["Labels", labels.map(([k, v]) => `${k}=${v}`).join(", ")]);
	rows.push(["Alert id", alert.id]);
	return rows;
}

export function textOf(message: Message): string {
	return [titleOf(message), "", ...details(message).map(([name, value]) => `${name}: ${value}`), ""].join("\n");
}

export function escapeHtml(text: string): string {
	return text.replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}

export function htmlOf(message: Message): string {
	const rows = details(message)
		.map(([name, value]) => `<tr><th align="left">${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`)
		.join("");
	return `<!doctype html><html><body><h2>${escapeHtml(titleOf(message))}</h2><table>${rows}</table></body></html>`;
}

/**
 * `template` with each `{{name}}` replaced by `vars[name]` (unknown names by nothing). `json`: the
 * template is JSON text and each value goes in as the inside of a JSON string, escaped.
 */
export function render(template: string, vars: Record<string, string>, encode: "json" | "url" | "none" = "none"): string {
	return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => {
		const value = vars[name] ?? "";
		if (encode === "json") return JSON.stringify(value).slice(1, -1);
		if (encode === "url") return encodeURIComponent(value);
		return value;
	});
}

/** The values an SMS template may name. */
export function smsVars(message: Message, to: string): Record<string, string> {
	return {
		to,
		text: titleOf(message),
		status: message.status,
		severity: message.alert.severity,
		summary: message.alert.summary
	};
}

/** The notice a channel test sends: a made-up alert that names the channel. */
export function testMessage(channelName: string, now: number): Message {
	const at = new Date(now).toISOString();
	return {
		kind: "test",
		status: "firing",
		sentAt: now,
		alert: {
			id: "test",
			ruleId: "test",
			ruleName: "Test notification",
			status: "firing",
			severity: "info",
			labels: {},
			fingerprint: "",
			value: 0,
			summary: `A test of channel '${channelName}': if you read this, it works`,
			startedAt: at,
			firingAt: at,
			resolvedAt: null,
			acknowledgedAt: null,
			acknowledgedBy: null,
			lastNotifiedAt: at,
			escalatedAt: null
		}
	};
}
