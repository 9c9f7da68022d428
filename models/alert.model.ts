import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";
import type {
	AlertStatus,
	ChannelType,
	Condition,
	NotificationKind,
	NotificationView,
	Severity,
	SignalName
} from "../lib/contracts.ts";

/**
 * Rows of the alert tables (migrations/0005-alerts.ts). Times are Unix milliseconds; maps and lists
 * are JSON text. The statements on them live in services/alert/store.ts.
 */
export interface AlertRuleRow {
	id: string;
	name: string;
	builtin: boolean;
	enabled: boolean;
	severity: Severity;
	metric: SignalName;
	condition: Condition;
	threshold: number;
	/** Seconds. */
	window: number;
	/** Seconds. */
	for: number;
	matchers: string;
	labels: string;
	channels: string;
	/** Seconds. */
	repeatInterval: number;
	/** JSON `{ after, channels }` or null. */
	escalation: string | null;
	createdAt: number;
	updatedAt: number;
}

export interface AlertRow {
	id: string;
	ruleId: string;
	ruleName: string;
	status: AlertStatus;
	severity: Severity;
	labels: string;
	fingerprint: string;
	value: number;
	summary: string;
	startedAt: number;
	firingAt: number | null;
	resolvedAt: number | null;
	acknowledgedAt: number | null;
	acknowledgedBy: string | null;
	lastNotifiedAt: number | null;
	/** Notices sent of this alert's firing and reminders: the compare-and-set guard of a reminder. */
	notifyCount: number;
	escalatedAt: number | null;
	/** `${ruleId}|${fingerprint}` while pending or firing, NULL once resolved (unique). */
	openKey: string | null;
}

export interface NotificationRow {
	id: string;
	alertId: string | null;
	channelId: string;
	kind: NotificationKind;
	status: NotificationView["status"];
	attempts: number;
	lastError: string | null;
	createdAt: number;
	sentAt: number | null;
}

export interface ChannelRow {
	id: string;
	name: string;
	type: ChannelType;
	/** JSON, secret fields sealed. */
	config: string;
	enabled: boolean;
	createdAt: number;
	updatedAt: number;
}

export interface SilenceRow {
	id: string;
	matchers: string;
	endsAt: number;
	comment: string;
	createdBy: string | null;
	createdAt: number;
}

export type AlertRuleModel = ModelStatic<Model<AlertRuleRow, Partial<AlertRuleRow>>>;

/** The rules table as moleculer-db sees it (the mixin's connection and health check). */
export function defineAlertRule(sequelize: Sequelize): AlertRuleModel {
	const json = { type: DataTypes.TEXT, allowNull: false };
	return sequelize.define<Model<AlertRuleRow, Partial<AlertRuleRow>>>("alert_rules", {
		id: { type: DataTypes.STRING(64), primaryKey: true },
		name: { type: DataTypes.STRING(191), allowNull: false },
		builtin: { type: DataTypes.BOOLEAN, allowNull: false },
		enabled: { type: DataTypes.BOOLEAN, allowNull: false },
		severity: { type: DataTypes.STRING(16), allowNull: false },
		metric: { type: DataTypes.STRING(64), allowNull: false },
		condition: { type: DataTypes.STRING(4), allowNull: false },
		threshold: { type: DataTypes.DOUBLE, allowNull: false },
		window: { type: DataTypes.INTEGER, allowNull: false },
		for: { type: DataTypes.INTEGER, allowNull: false },
		matchers: json,
		labels: json,
		channels: json,
		repeatInterval: { type: DataTypes.INTEGER, allowNull: false },
		escalation: { type: DataTypes.TEXT, allowNull: true },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}
