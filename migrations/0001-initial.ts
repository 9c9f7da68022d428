import { DataTypes, type QueryInterface } from "sequelize";

const ms = () => ({ type: DataTypes.BIGINT, allowNull: true });
const msRequired = () => ({ type: DataTypes.BIGINT, allowNull: false });

export async function up(qi: QueryInterface): Promise<void> {
	// MySQL's TEXT stops at 64 KiB; payloads may be 256 KiB. SQLite has one TEXT.
	const longText = qi.sequelize.getDialect() === "mysql" ? DataTypes.TEXT("medium") : DataTypes.TEXT;
	await qi.createTable("tasks", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		status: { type: DataTypes.STRING(16), allowNull: false },
		type: { type: DataTypes.STRING(128), allowNull: false },
		payload: { type: longText, allowNull: true },
		target: { type: DataTypes.STRING(128), allowNull: true },
		selector: { type: DataTypes.TEXT, allowNull: true },
		terminalId: { type: DataTypes.STRING(128), allowNull: true },
		priority: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 5 },
		timeoutMs: { type: DataTypes.INTEGER, allowNull: false },
		ackTimeoutMs: { type: DataTypes.INTEGER, allowNull: false },
		ttlMs: { type: DataTypes.BIGINT, allowNull: false },
		maxRetries: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
		retries: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
		backoff: { type: DataTypes.TEXT, allowNull: true },
		attempt: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
		deliveries: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
		idempotencyKey: { type: DataTypes.STRING(255), allowNull: true, unique: true },
		groupId: { type: DataTypes.STRING(36), allowNull: true },
		shardIndex: { type: DataTypes.INTEGER, allowNull: true },
		shardTotal: { type: DataTypes.INTEGER, allowNull: true },
		output: { type: longText, allowNull: true },
		error: { type: DataTypes.TEXT, allowNull: true },
		exitCode: { type: DataTypes.INTEGER, allowNull: true },
		progress: { type: DataTypes.INTEGER, allowNull: true },
		createdBy: { type: DataTypes.STRING(128), allowNull: true },
		createdAt: msRequired(),
		updatedAt: msRequired(),
		deliveredAt: ms(),
		startedAt: ms(),
		finishedAt: ms(),
		expiresAt: ms(),
		notBefore: ms(),
		deadlineAt: ms()
	});
	await qi.addIndex("tasks", ["status", "target", "priority", "id"], { name: "tasks_queue" });
	await qi.addIndex("tasks", ["status", "deadlineAt"], { name: "tasks_deadline" });
	await qi.addIndex("tasks", ["status", "expiresAt"], { name: "tasks_expiry" });
	await qi.addIndex("tasks", ["status", "notBefore"], { name: "tasks_wake" });
	await qi.addIndex("tasks", ["terminalId", "status"], { name: "tasks_terminal" });
	await qi.addIndex("tasks", ["groupId"], { name: "tasks_group" });
	await qi.addIndex("tasks", ["createdAt"], { name: "tasks_created" });

	await qi.createTable("terminals", {
		id: { type: DataTypes.STRING(128), primaryKey: true },
		name: { type: DataTypes.STRING(255), allowNull: true },
		labels: { type: DataTypes.TEXT, allowNull: false },
		concurrency: { type: DataTypes.INTEGER, allowNull: false },
		enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
		keyVersion: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
		lastActiveAt: ms(),
		createdAt: msRequired(),
		updatedAt: msRequired()
	});

	await qi.createTable("users", {
		id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
		username: { type: DataTypes.STRING(64), allowNull: false, unique: true },
		passwordHash: { type: DataTypes.STRING(255), allowNull: false },
		role: { type: DataTypes.STRING(16), allowNull: false },
		createdAt: msRequired(),
		updatedAt: msRequired()
	});
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.dropTable("users");
	await qi.dropTable("terminals");
	await qi.dropTable("tasks");
}
