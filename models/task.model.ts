import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";
import type { TaskStatus } from "../lib/contracts.ts";

/** A row of `tasks`. Times are Unix milliseconds; JSON columns hold text. */
export interface TaskRow {
	id: string;
	status: TaskStatus;
	type: string;
	payload: string | null;
	/** The terminal the submitter named, or null for a selector task. */
	target: string | null;
	selector: string | null;
	/** The terminal holding (or that last held) the task. */
	terminalId: string | null;
	priority: number;
	/** Processing timeout, ms (the API speaks seconds). */
	timeoutMs: number;
	/** Ack timeout, ms. */
	ackTimeoutMs: number;
	/** Longest wait in PENDING, ms. */
	ttlMs: number;
	maxRetries: number;
	retries: number;
	backoff: string | null;
	attempt: number;
	/** Pushes since the last ack; bounds redelivery after ack timeouts. */
	deliveries: number;
	idempotencyKey: string | null;
	groupId: string | null;
	shardIndex: number | null;
	shardTotal: number | null;
	output: string | null;
	error: string | null;
	exitCode: number | null;
	progress: number | null;
	createdBy: string | null;
	createdAt: number;
	updatedAt: number;
	deliveredAt: number | null;
	startedAt: number | null;
	finishedAt: number | null;
	/** PENDING only: when the task expires unless delivered. */
	expiresAt: number | null;
	/** PENDING only: a retry waiting for its backoff. */
	notBefore: number | null;
	/** DELIVERED: ack deadline; PROCESSING: processing deadline. */
	deadlineAt: number | null;
	/** The sealed secrets and sensitive payload values (lib/task-secrets.ts), or null. */
	secrets?: string | null;
	/** State changes, one JSON object a line (services/dispatcher/history.ts). */
	history?: string | null;
}

export type TaskModel = ModelStatic<Model<TaskRow, Partial<TaskRow>>>;

const ms = () => ({ type: DataTypes.BIGINT, allowNull: true });

export function defineTask(sequelize: Sequelize): TaskModel {
	// MySQL's TEXT stops at 64 KiB; payloads may be 256 KiB. SQLite has one TEXT.
	const longText = sequelize.getDialect() === "mysql" ? DataTypes.TEXT("medium") : DataTypes.TEXT;
	return sequelize.define<Model<TaskRow, Partial<TaskRow>>>("tasks", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		status: { type: DataTypes.STRING(16), allowNull: false },
		type: { type: DataTypes.STRING(128), allowNull: false },
		payload: { type: longText },
		target: { type: DataTypes.STRING(128) },
		selector: { type: DataTypes.TEXT },
		terminalId: { type: DataTypes.STRING(128) },
		priority: { type: DataTypes.INTEGER, allowNull: false },
		timeoutMs: { type: DataTypes.INTEGER, allowNull: false },
		ackTimeoutMs: { type: DataTypes.INTEGER, allowNull: false },
		ttlMs: { type: DataTypes.BIGINT, allowNull: false },
		maxRetries: { type: DataTypes.INTEGER, allowNull: false },
		retries: { type: DataTypes.INTEGER, allowNull: false },
		backoff: { type: DataTypes.TEXT },
		attempt: { type: DataTypes.INTEGER, allowNull: false },
		deliveries: { type: DataTypes.INTEGER, allowNull: false },
		idempotencyKey: { type: DataTypes.STRING(255) },
		groupId: { type: DataTypes.STRING(36) },
		shardIndex: { type: DataTypes.INTEGER },
		shardTotal: { type: DataTypes.INTEGER },
		output: { type: longText },
		error: { type: DataTypes.TEXT },
		exitCode: { type: DataTypes.INTEGER },
		progress: { type: DataTypes.INTEGER },
		createdBy: { type: DataTypes.STRING(128) },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false },
		deliveredAt: ms(),
		startedAt: ms(),
		finishedAt: ms(),
		expiresAt: ms(),
		notBefore: ms(),
		deadlineAt: ms(),
		secrets: { type: DataTypes.TEXT },
		history: { type: DataTypes.TEXT }
	});
}
