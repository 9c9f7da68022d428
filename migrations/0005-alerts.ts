import { DataTypes, type QueryInterface } from "sequelize";

const ms = () => ({ type: DataTypes.BIGINT, allowNull: true });
const msRequired = () => ({ type: DataTypes.BIGINT, allowNull: false });
const json = () => ({ type: DataTypes.TEXT, allowNull: false });

export async function up(qi: QueryInterface): Promise<void> {
	// Rules: the built-in ones are seeded by the alert service under fixed ids.
	await qi.createTable("alert_rules", {
		id: { type: DataTypes.STRING(64), primaryKey: true },
		name: { type: DataTypes.STRING(191), allowNull: false },
		builtin: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
		enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
		severity: { type: DataTypes.STRING(16), allowNull: false },
		metric: { type: DataTypes.STRING(64), allowNull: false },
		condition: { type: DataTypes.STRING(4), allowNull: false },
		threshold: { type: DataTypes.DOUBLE, allowNull: false },
		window: { type: DataTypes.INTEGER, allowNull: false },
		for: { type: DataTypes.INTEGER, allowNull: false },
		matchers: json(),
		labels: json(),
		channels: json(),
		repeatInterval: { type: DataTypes.INTEGER, allowNull: false },
		escalation: { type: DataTypes.TEXT, allowNull: true },
		createdAt: msRequired(),
		updatedAt: msRequired()
	});
	await qi.addIndex("alert_rules", ["name"], { name: "alert_rules_name", unique: true });

	// One row per (rule, series) episode. `openKey` is `${ruleId}|${fingerprint}` while the alert is
	// pending or firing and NULL once resolved: its unique index lets one insert win when two
	// evaluations (two monitor replicas, a handover) open the same alert at once. NULLs never clash.
	await qi.createTable("alerts", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		ruleId: { type: DataTypes.STRING(64), allowNull: false },
		ruleName: { type: DataTypes.STRING(191), allowNull: false },
		status: { type: DataTypes.STRING(16), allowNull: false },
		severity: { type: DataTypes.STRING(16), allowNull: false },
		labels: json(),
		fingerprint: { type: DataTypes.STRING(512), allowNull: false },
		value: { type: DataTypes.DOUBLE, allowNull: false },
		summary: { type: DataTypes.TEXT, allowNull: false },
		startedAt: msRequired(),
		firingAt: ms(),
		resolvedAt: ms(),
		acknowledgedAt: ms(),
		acknowledgedBy: { type: DataTypes.STRING(128), allowNull: true },
		lastNotifiedAt: ms(),
		notifyCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
		escalatedAt: ms(),
		openKey: { type: DataTypes.STRING(600), allowNull: true }
	});
	await qi.addIndex("alerts", ["openKey"], { name: "alerts_open_key", unique: true });
	await qi.addIndex("alerts", ["status", "startedAt"], { name: "alerts_status" });
	await qi.addIndex("alerts", ["ruleId", "startedAt"], { name: "alerts_rule" });

	// Every notification and its delivery: what was sent, silenced or failed, and how often it was tried.
	await qi.createTable("alert_notifications", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		alertId: { type: DataTypes.STRING(36), allowNull: true },
		channelId: { type: DataTypes.STRING(64), allowNull: false },
		kind: { type: DataTypes.STRING(16), allowNull: false },
		status: { type: DataTypes.STRING(16), allowNull: false },
		attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
		lastError: { type: DataTypes.TEXT, allowNull: true },
		createdAt: msRequired(),
		sentAt: ms()
	});
	await qi.addIndex("alert_notifications", ["alertId"], { name: "alert_notifications_alert" });

	// Channels: `config` is JSON whose secret fields are sealed with AES-256-GCM (see lib/secret-box.ts).
	await qi.createTable("alert_channels", {
		id: { type: DataTypes.STRING(64), primaryKey: true },
		name: { type: DataTypes.STRING(191), allowNull: false },
		type: { type: DataTypes.STRING(16), allowNull: false },
		config: json(),
		enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
		createdAt: msRequired(),
		updatedAt: msRequired()
	});
	await qi.addIndex("alert_channels", ["name"], { name: "alert_channels_name", unique: true });

	await qi.createTable("silences", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		matchers: json(),
		endsAt: msRequired(),
		comment: { type: DataTypes.TEXT, allowNull: false },
		createdBy: { type: DataTypes.STRING(128), allowNull: true },
		createdAt: msRequired()
	});
	await qi.addIndex("silences", ["endsAt"], { name: "silences_ends_at" });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.dropTable("silences");
	await qi.dropTable("alert_channels");
	await qi.dropTable("alert_notifications");
	await qi.dropTable("alerts");
	await qi.dropTable("alert_rules");
}
