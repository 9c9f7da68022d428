/**
 * The alert service's data access: every statement on alert_rules, alerts, alert_notifications,
 * alert_channels and silences, one named method each, values always bound. Column names are
 * quoted (`window`, `for` and `condition` are reserved words in MySQL; SQLite takes the same
 * quotes) and come only from the lists below, never from a caller.
 *
 * Every change of an alert's state is a compare-and-set: its WHERE names the state it was read
 * in (status, notifyCount, escalatedAt), so that of two replicas evaluating the same rule at
 * once only one changes it, and only that one notifies.
 */
import type { Sequelize } from "sequelize";
import { isDuplicate, Statements } from "../../lib/sql/statements.ts";
import type { AlertRow, AlertRuleRow, ChannelRow, NotificationRow, SilenceRow } from "../../models/alert.model.ts";
import type { AlertStatus, Severity } from "../../lib/contracts.ts";

const RULE_COLUMNS = [
	"id",
	"name",
	"builtin",
	"enabled",
	"severity",
	"metric",
	"condition",
	"threshold",
	"window",
	"for",
	"matchers",
	"labels",
	"channels",
	"repeatInterval",
	"escalation",
	"createdAt",
	"updatedAt"
] as const satisfies readonly (keyof AlertRuleRow)[];

const ALERT_COLUMNS = [
	"id",
	"ruleId",
	"ruleName",
	"status",
	"severity",
	"labels",
	"fingerprint",
	"value",
	"summary",
	"startedAt",
	"firingAt",
	"resolvedAt",
	"acknowledgedAt",
	"acknowledgedBy",
	"lastNotifiedAt",
	"notifyCount",
	"escalatedAt",
	"openKey"
] as const satisfies readonly (keyof AlertRow)[];

const NOTIFICATION_COLUMNS = [
	"id",
	"alertId",
	"channelId",
	"kind",
	"status",
	"attempts",
	"lastError",
	"createdAt",
	"sentAt"
] as const satisfies readonly (keyof NotificationRow)[];

const CHANNEL_COLUMNS = [
	"id",
	"name",
	"type",
	"config",
	"enabled",
	"createdAt",
	"updatedAt"
] as const satisfies readonly (keyof ChannelRow)[];

const SILENCE_COLUMNS = [
	"id",
	"matchers",
	"endsAt",
	"comment",
	"createdBy",
	"createdAt"
] as const satisfies readonly (keyof SilenceRow)[];

const q = (column: string) => `\`${column}\``;

function placeholders(count: number, from = 1): string {
	return Array.from({ length: count }, (_, i) => `$${from + i}`).join(", ");
}

function num(value: unknown): number {
	return Number(value);
}
function numOrNull(value: unknown): number | null {
	return value === null || value === undefined ? null : Number(value);
}

function ruleRow(row: AlertRuleRow): AlertRuleRow {
	return {
		...row,
		builtin: Boolean(row.builtin),
		enabled: Boolean(row.enabled),
		threshold: num(row.threshold),
		window: num(row.window),
		for: num(row.for),
		repeatInterval: num(row.repeatInterval),
		createdAt: num(row.createdAt),
		updatedAt: num(row.updatedAt)
	};
}

function alertRow(row: AlertRow): AlertRow {
	return {
		...row,
		value: num(row.value),
		startedAt: num(row.startedAt),
		firingAt: numOrNull(row.firingAt),
		resolvedAt: numOrNull(row.resolvedAt),
		acknowledgedAt: numOrNull(row.acknowledgedAt),
		lastNotifiedAt: numOrNull(row.lastNotifiedAt),
		notifyCount: num(row.notifyCount),
		escalatedAt: numOrNull(row.escalatedAt)
	};
}

function notificationRow(row: NotificationRow): NotificationRow {
	return { ...row, attempts: num(row.attempts), createdAt: num(row.createdAt), sentAt: numOrNull(row.sentAt) };
}

function channelRow(row: ChannelRow): ChannelRow {
	return { ...row, enabled: Boolean(row.enabled), createdAt: num(row.createdAt), updatedAt: num(row.updatedAt) };
}

function silenceRow(row: SilenceRow): SilenceRow {
	return { ...row, endsAt: num(row.endsAt), createdAt: num(row.createdAt) };
}

export interface AlertFilter {
	status?: AlertStatus;
	ruleId?: string;
	severity?: Severity;
	/** startedAt at or after, epoch ms. */
	since?: number;
	/** startedAt before, epoch ms. */
	until?: number;
}

export class AlertStore {
	private readonly sql: Statements;

	constructor(sequelize: Sequelize) {
		this.sql = new Statements(sequelize);
	}

	private async insert<R extends object>(table: string, columns: readonly (keyof R & string)[], row: R): Promise<void> {
		await this.sql.run(
			`INSERT INTO ${table} (${columns.map(q).join(", ")}) VALUES (${placeholders(columns.length)})`,
			columns.map(c => row[c] ?? null)
		);
	}

	private async update<R extends object>(
		table: string,
		columns: readonly (keyof R & string)[],
		id: string,
		changes: Partial<R>
	): Promise<boolean> {
		const set = columns.filter(c => c !== "id" && changes[c] !== undefined);
		if (set.length === 0) return true;
		const values = set.map(c => changes[c]);
		const sql = `UPDATE ${table} SET ${set.map((c, i) => `${q(c)} = $${i + 1}`).join(", ")} WHERE id = $${set.length + 1}`;
		return (await this.sql.run(sql, [...values, id])) > 0;
	}

	// ------------------------------------------------------------ rules

	async rules(): Promise<AlertRuleRow[]> {
		return (await this.sql.select<AlertRuleRow>("SELECT * FROM alert_rules ORDER BY builtin DESC, name", [])).map(ruleRow);
	}

	async rule(id: string): Promise<AlertRuleRow | null> {
		const [row] = await this.sql.select<AlertRuleRow>("SELECT * FROM alert_rules WHERE id = $1", [id]);
		return row ? ruleRow(row) : null;
	}

	/** Rejects with a duplicate error (see isDuplicate) when the id or name is taken. */
	insertRule(row: AlertRuleRow): Promise<void> {
		return this.insert("alert_rules", RULE_COLUMNS, row);
	}

	/** Inserts the rule unless one with its id exists (seeding: an operator's edits stay); true when inserted. */
	async seedRule(row: AlertRuleRow): Promise<boolean> {
		if (await this.rule(row.id)) return false;
		try {
			await this.insertRule(row);
			return true;
		} catch (err) {
			if (isDuplicate(err)) return false;
			throw err;
		}
	}

	updateRule(id: string, changes: Partial<AlertRuleRow>): Promise<boolean> {
		return this.update("alert_rules", RULE_COLUMNS, id, changes);
	}

	async deleteRule(id: string): Promise<boolean> {
		return (await this.sql.run("DELETE FROM alert_rules WHERE id = $1", [id])) > 0;
	}

	// ------------------------------------------------------------ alerts

	async alert(id: string): Promise<AlertRow | null> {
		const [row] = await this.sql.select<AlertRow>("SELECT * FROM alerts WHERE id = $1", [id]);
		return row ? alertRow(row) : null;
	}

	/** The rule's pending and firing alerts. */
	async openAlerts(ruleId: string): Promise<AlertRow[]> {
		const rows = await this.sql.select<AlertRow>("SELECT * FROM alerts WHERE ruleId = $1 AND openKey IS NOT NULL", [ruleId]);
		return rows.map(alertRow);
	}

	/** False when an open alert of the same rule and series exists already (another replica won). */
	async insertAlert(row: AlertRow): Promise<boolean> {
		try {
			await this.insert("alerts", ALERT_COLUMNS, row);
			return true;
		} catch (err) {
			if (isDuplicate(err)) return false;
			throw err;
		}
	}

	/** pending → firing; true for the one caller that made the change. */
	async fire(id: string, at: number, value: number, summary: string): Promise<boolean> {
		const sql =
			"UPDATE alerts SET status = 'firing', firingAt = $1, lastNotifiedAt = $1, notifyCount = notifyCount + 1, " +
			"value = $2, summary = $3 WHERE id = $4 AND status = 'pending'";
		return (await this.sql.run(sql, [at, value, summary, id])) > 0;
	}

	/** A reminder, claimed by the notice count it was read with. */
	async remind(id: string, notifyCount: number, at: number, value: number, summary: string): Promise<boolean> {
		const sql =
			"UPDATE alerts SET lastNotifiedAt = $1, notifyCount = notifyCount + 1, value = $2, summary = $3 " +
			"WHERE id = $4 AND status = 'firing' AND notifyCount = $5 AND acknowledgedAt IS NULL";
		return (await this.sql.run(sql, [at, value, summary, id, notifyCount])) > 0;
	}

	async escalate(id: string, at: number): Promise<boolean> {
		const sql =
			"UPDATE alerts SET escalatedAt = $1 WHERE id = $2 AND status = 'firing' AND escalatedAt IS NULL AND acknowledgedAt IS NULL";
		return (await this.sql.run(sql, [at, id])) > 0;
	}

	/** pending or firing (`from`) → resolved; the open key is freed for the series' next alert. */
	async resolve(id: string, from: AlertStatus, at: number): Promise<boolean> {
		const sql = "UPDATE alerts SET status = 'resolved', resolvedAt = $1, openKey = NULL WHERE id = $2 AND status = $3";
		return (await this.sql.run(sql, [at, id, from])) > 0;
	}

	/** Resolves every open alert of a rule (deleted or disabled), sending nothing. */
	async resolveAllOf(ruleId: string, at: number): Promise<number> {
		const sql =
			"UPDATE alerts SET status = 'resolved', resolvedAt = $1, openKey = NULL WHERE ruleId = $2 AND openKey IS NOT NULL";
		return this.sql.run(sql, [at, ruleId]);
	}

	/** The first acknowledgement counts; false when the alert is resolved or already acknowledged. */
	async acknowledge(id: string, at: number, by: string | null): Promise<boolean> {
		const sql =
			"UPDATE alerts SET acknowledgedAt = $1, acknowledgedBy = $2 WHERE id = $3 AND status <> 'resolved' AND acknowledgedAt IS NULL";
		return (await this.sql.run(sql, [at, by, id])) > 0;
	}

	private where(filter: AlertFilter): { sql: string; params: unknown[] } {
		const clauses: string[] = [];
		const params: unknown[] = [];
		const add = (clause: string, value: unknown) => clauses.push(clause.replace("?", `$${params.push(value)}`));
		if (filter.status) add("status = ?", filter.status);
		if (filter.ruleId) add("ruleId = ?", filter.ruleId);
		if (filter.severity) add("severity = ?", filter.severity);
		if (filter.since !== undefined) add("startedAt >= ?", filter.since);
		if (filter.until !== undefined) add("startedAt < ?", filter.until);
		return { sql: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", params };
	}

	/** Newest first. */
	async listAlerts(filter: AlertFilter, offset: number, limit: number): Promise<AlertRow[]> {
		const { sql, params } = this.where(filter);
		const n = params.length;
		const rows = await this.sql.select<AlertRow>(
			`SELECT * FROM alerts ${sql} ORDER BY startedAt DESC, id DESC LIMIT $${n + 1} OFFSET $${n + 2}`,
			[...params, limit, offset]
		);
		return rows.map(alertRow);
	}

	async countAlerts(filter: AlertFilter): Promise<number> {
		const { sql, params } = this.where(filter);
		const [row] = await this.sql.select<{ n: unknown }>(`SELECT COUNT(*) AS n FROM alerts ${sql}`, params);
		return num(row?.n ?? 0);
	}

	// ------------------------------------------------------------ notifications

	insertNotification(row: NotificationRow): Promise<void> {
		return this.insert("alert_notifications", NOTIFICATION_COLUMNS, row);
	}

	updateNotification(id: string, changes: Partial<NotificationRow>): Promise<boolean> {
		return this.update("alert_notifications", NOTIFICATION_COLUMNS, id, changes);
	}

	async notificationsOf(alertId: string): Promise<NotificationRow[]> {
		const rows = await this.sql.select<NotificationRow>(
			"SELECT * FROM alert_notifications WHERE alertId = $1 ORDER BY createdAt, id",
			[alertId]
		);
		return rows.map(notificationRow);
	}

	/** The channels that were told of an alert's firing (a silenced notice told no one). */
	async toldChannels(alertId: string): Promise<string[]> {
		const rows = await this.sql.select<{ channelId: string }>(
			"SELECT DISTINCT channelId FROM alert_notifications WHERE alertId = $1 AND kind IN ('firing', 'repeat', 'escalation') AND status <> 'silenced'",
			[alertId]
		);
		return rows.map(row => row.channelId);
	}

	// ------------------------------------------------------------ channels

	async channels(): Promise<ChannelRow[]> {
		return (await this.sql.select<ChannelRow>("SELECT * FROM alert_channels ORDER BY name", [])).map(channelRow);
	}

	async channel(id: string): Promise<ChannelRow | null> {
		const [row] = await this.sql.select<ChannelRow>("SELECT * FROM alert_channels WHERE id = $1", [id]);
		return row ? channelRow(row) : null;
	}

	insertChannel(row: ChannelRow): Promise<void> {
		return this.insert("alert_channels", CHANNEL_COLUMNS, row);
	}

	updateChannel(id: string, changes: Partial<ChannelRow>): Promise<boolean> {
		return this.update("alert_channels", CHANNEL_COLUMNS, id, changes);
	}

	async deleteChannel(id: string): Promise<boolean> {
		return (await this.sql.run("DELETE FROM alert_channels WHERE id = $1", [id])) > 0;
	}

	// ------------------------------------------------------------ silences

	async silences(): Promise<SilenceRow[]> {
		return (await this.sql.select<SilenceRow>("SELECT * FROM silences ORDER BY createdAt DESC, id DESC", [])).map(silenceRow);
	}

	async activeSilences(now: number): Promise<SilenceRow[]> {
		return (await this.sql.select<SilenceRow>("SELECT * FROM silences WHERE endsAt > $1", [now])).map(silenceRow);
	}

	async silence(id: string): Promise<SilenceRow | null> {
		const [row] = await this.sql.select<SilenceRow>("SELECT * FROM silences WHERE id = $1", [id]);
		return row ? silenceRow(row) : null;
	}

	insertSilence(row: SilenceRow): Promise<void> {
		return this.insert("silences", SILENCE_COLUMNS, row);
	}

	/** Ends an active silence now; an ended one keeps its end. */
	async endSilence(id: string, now: number): Promise<void> {
		await this.sql.run("UPDATE silences SET endsAt = $1 WHERE id = $2 AND endsAt > $1", [now, id]);
	}
}

export { isDuplicate };
