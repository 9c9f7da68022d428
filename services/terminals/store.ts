/**
 * The terminals table's hand-written statements, one named function each, parameters bound.
 * Everything else goes through moleculer-db's entity methods (see terminals.service.ts).
 */
import type { Sequelize } from "sequelize";

/** Terminals per statement: one commit for many rather than one each. */
const ACTIVITY_CHUNK = 500;

export interface Activity {
	terminalId: string;
	lastActiveAt: number;
}

/**
 * Sets each terminal's lastActiveAt, in one statement per ACTIVITY_CHUNK terminals: a gateway with
 * many thousands of terminals reports them all every few seconds.
 */
export async function recordActivity(db: Sequelize, items: Activity[]): Promise<void> {
	for (let start = 0; start < items.length; start += ACTIVITY_CHUNK) {
		const chunk = items.slice(start, start + ACTIVITY_CHUNK);
		const bind: unknown[] = [];
		const slot = (value: unknown) => `$${bind.push(value)}`;
		const cases = chunk.map(item => `WHEN ${slot(item.terminalId)} THEN ${slot(item.lastActiveAt)}`).join(" ");
		const ids = chunk.map(item => slot(item.terminalId)).join(", ");
		await db.query(`UPDATE terminals SET lastActiveAt = CASE id ${cases} ELSE lastActiveAt END WHERE id IN (${ids})`, {
			bind
		});
	}
}
