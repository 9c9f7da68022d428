import { DataTypes, type QueryInterface } from "sequelize";

const ms = () => ({ type: DataTypes.BIGINT, allowNull: true });
const msRequired = () => ({ type: DataTypes.BIGINT, allowNull: false });

export async function up(qi: QueryInterface): Promise<void> {
	// MySQL's TEXT stops at 64 KiB; a job's task carries a payload of up to 256 KiB.
	const longText = qi.sequelize.getDialect() === "mysql" ? DataTypes.TEXT("medium") : DataTypes.TEXT;
	await qi.createTable("jobs", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		name: { type: DataTypes.STRING(255), allowNull: false },
		schedule: { type: DataTypes.TEXT, allowNull: false },
		task: { type: longText, allowNull: false },
		misfirePolicy: { type: DataTypes.STRING(16), allowNull: false },
		overlapPolicy: { type: DataTypes.STRING(16), allowNull: false },
		catchUpWindowMs: { type: DataTypes.BIGINT, allowNull: false },
		startAt: ms(),
		endAt: ms(),
		enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
		pausedAt: ms(),
		resumedAt: ms(),
		createdBy: { type: DataTypes.STRING(128), allowNull: true },
		createdAt: msRequired(),
		updatedAt: msRequired(),
		version: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 }
	});
	await qi.addIndex("jobs", ["name"], { name: "jobs_name" });

	// The fire ledger: one row per computed fire time. Its primary key is the exactly-once claim.
	await qi.createTable("job_fires", {
		jobId: { type: DataTypes.STRING(36), primaryKey: true },
		fireTime: { type: DataTypes.BIGINT, primaryKey: true },
		outcome: { type: DataTypes.STRING(16), allowNull: false },
		manual: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
		taskIds: { type: DataTypes.TEXT, allowNull: true },
		node: { type: DataTypes.STRING(128), allowNull: true },
		claimedAt: msRequired(),
		firedAt: ms(),
		finishedAt: ms(),
		detail: { type: DataTypes.TEXT, allowNull: true }
	});
	await qi.addIndex("job_fires", ["outcome", "claimedAt"], { name: "job_fires_claims" });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.dropTable("job_fires");
	await qi.dropTable("jobs");
}
