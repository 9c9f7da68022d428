/** Registry rows → what the dispatcher and gateways need (records) and what people see (views). */
import type { FleetSummary, Labels, Presence, TerminalRecord, TerminalTransport, TerminalView } from "../../lib/contracts.ts";
import type { TerminalRow } from "../../models/terminal.model.ts";

/** What a terminal holds and what waits for it. */
export interface TaskCounts {
	running: number;
	queued: number;
}

export const NO_TASKS: TaskCounts = { running: 0, queued: 0 };

export function toRecord(row: TerminalRow): TerminalRecord {
	return {
		id: row.id,
		labels: JSON.parse(row.labels) as Labels,
		concurrency: row.concurrency,
		enabled: Boolean(row.enabled),
		keyVersion: row.keyVersion,
		draining: Boolean(row.draining),
		previousKeyVersion: row.previousKeyVersion ?? null,
		previousKeyUntil: ms(row.previousKeyUntil)
	};
}

/** The view's name for a transport, whichever spelling its gateway used; null when unknown. */
export function transportName(raw: string | undefined): TerminalTransport | null {
	switch (raw) {
		case "socket.io":
		case "socketio":
			return "socketio";
		case "websocket":
		case "ws":
			return "ws";
		case "pull":
			return "pull";
		default:
			return null;
	}
}

function ms(value: number | string | null | undefined): number | null {
	return value === null || value === undefined ? null : Number(value);
}

/** Polled within `pullWindow` of `now`: online over HTTP pull, though it holds no session. */
export function pullsNow(row: TerminalRow, now: number, pullWindow: number): boolean {
	const pulledAt = ms(row.pulledAt);
	return pulledAt !== null && now - pulledAt < pullWindow;
}

export function statusOf(row: TerminalRow, presence: Presence | undefined, now: number, pullWindow: number) {
	if (!row.enabled) return "disabled" as const;
	return presence || pullsNow(row, now, pullWindow) ? ("online" as const) : ("offline" as const);
}

/**
 * The terminal as the API shows it. A live session wins over pulls (its transport is the
 * session's); lastActiveAt is the latest sign of life of any kind.
 */
export function toView(
	row: TerminalRow,
	presence: Presence | undefined,
	counts: TaskCounts,
	now: number,
	pullWindow: number
): TerminalView {
	const enabled = Boolean(row.enabled);
	const status = statusOf(row, presence, now, pullWindow);
	const seen = [presence?.lastActiveAt, ms(row.lastActiveAt), ms(row.pulledAt)].filter(
		(t): t is number => typeof t === "number"
	);
	const lastActive = seen.length > 0 ? Math.max(...seen) : null;
	const transport = status !== "online" ? null : presence ? transportName(presence.transport) : "pull";
	return {
		id: row.id,
		name: row.name,
		status,
		labels: JSON.parse(row.labels) as Labels,
		concurrency: presence?.concurrency ?? row.concurrency,
		enabled,
		lastActiveAt: lastActive === null ? null : new Date(lastActive).toISOString(),
		connectedAt: presence ? new Date(presence.connectedAt).toISOString() : null,
		nodeID: presence?.nodeID ?? null,
		createdAt: new Date(Number(row.createdAt)).toISOString(),
		draining: Boolean(row.draining),
		transport,
		capabilities: presence?.capabilities ?? null,
		running: counts.running,
		queued: counts.queued
	};
}

/** `label` as the list filters it: `key` (any value) or `key=value` (lib/labels.ts: own labels only). */
export { hasLabel } from "../../lib/labels.ts";

/** The fleet at a glance, for the status page and the monitor's rules; offline since last seen, else registered. */
export function summarize(rows: TerminalRow[], presence: Map<string, Presence>, now: number, pullWindow: number): FleetSummary {
	const summary: FleetSummary = { online: 0, offline: 0, disabled: 0, criticalOffline: [] };
	for (const row of rows) {
		const status = statusOf(row, presence.get(row.id), now, pullWindow);
		summary[status]++;
		if (status !== "offline" || (JSON.parse(row.labels) as Labels).critical !== "true") continue;
		const seen = [ms(row.lastActiveAt), ms(row.pulledAt)].filter((t): t is number => t !== null);
		summary.criticalOffline.push({ id: row.id, since: seen.length > 0 ? Math.max(...seen) : Number(row.createdAt) });
	}
	return summary;
}
