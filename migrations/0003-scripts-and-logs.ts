import { DataTypes, type QueryInterface } from "sequelize";

export async function up(qi: QueryInterface): Promise<void> {
	const longText = qi.sequelize.getDialect() === "mysql" ? DataTypes.TEXT("medium") : DataTypes.TEXT;
	// Versioned scripts: a version is never changed, a new body is a new version.
	await qi.createTable("scripts", {
		name: { type: DataTypes.STRING(128), primaryKey: true },
		version: { type: DataTypes.INTEGER, primaryKey: true },
		interpreter: { type: DataTypes.STRING(16), allowNull: false },
		body: { type: longText, allowNull: false },
		sha256: { type: DataTypes.STRING(64), allowNull: false },
		createdBy: { type: DataTypes.STRING(128), allowNull: true },
		createdAt: { type: DataTypes.BIGINT, allowNull: false }
	});
	// Output a terminal streamed while a task ran (progress logs), bounded per task.
	await qi.createTable("task_logs", {
		taskId: { type: DataTypes.STRING(36), primaryKey: true },
		seq: { type: DataTypes.INTEGER, primaryKey: true },
		attempt: { type: DataTypes.INTEGER, allowNull: false },
		stream: { type: DataTypes.STRING(8), allowNull: false },
		text: { type: DataTypes.TEXT, allowNull: false },
		at: { type: DataTypes.BIGINT, allowNull: false }
	});
	await qi.addIndex("task_logs", ["at"], { name: "task_logs_at" });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.dropTable("task_logs");
	await qi.dropTable("scripts");
}
