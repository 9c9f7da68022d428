/** Rows of audit_log as `GET /api/audit` shows them. */
import type { AuditRow } from "../../lib/contracts.ts";
import type { AuditLogRow } from "../../models/audit.model.ts";

function parsed(changes: string | null): Record<string, unknown> | null {
	if (changes === null) return null;
	try {
		return JSON.parse(changes) as Record<string, unknown>;
	} catch {
		// An edited row may hold anything; verify says so, the list still shows it.
		return { unreadable: changes.slice(0, 200) };
	}
}

export function toAuditRow(row: AuditLogRow): AuditRow {
	return {
		id: row.id,
		at: Number.isFinite(row.at) && Math.abs(row.at) < 8.64e15 ? new Date(row.at).toISOString() : String(row.at),
		actor: row.actor,
		actorType: row.actorType,
		action: row.action,
		object: row.object,
		address: row.address,
		userAgent: row.userAgent,
		outcome: row.outcome,
		changes: parsed(row.changes)
	};
}
