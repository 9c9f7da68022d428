import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";

export type MisfirePolicy = "skip" | "fire_once" | "catch_up";
export type OverlapPolicy = "allow" | "forbid" | "replace";

/** A row of `jobs`. Times are Unix milliseconds; schedule and task are JSON text. */
export interface JobRow {
	id: string;
	name: string;
	schedule: string;
	task: string;
	misfirePolicy: MisfirePolicy;
	overlapPolicy: OverlapPolicy;
	/** catch_up fires missed times no older than this, ms. */
	catchUpWindowMs: number;
	startAt: number | null;
	endAt: number | null;
	/** False while paused. */
	enabled: boolean;
	pausedAt: number | null;
	resumedAt: number | null;
	createdBy: string | null;
	createdAt: number;
	updatedAt: number;
	/** Bumped by every change, so that timers armed for an older version stand down. */
	version: number;
}

export type JobModel = ModelStatic<Model<JobRow, Partial<JobRow>>>;

export function defineJob(sequelize: Sequelize): JobModel {
	const longText = sequelize.getDialect() === "mysql" ? DataTypes.TEXT("medium") : DataTypes.TEXT;
	return sequelize.define<Model<JobRow, Partial<JobRow>>>("jobs", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		name: { type: DataTypes.STRING(255), allowNull: false },
		schedule: { type: DataTypes.TEXT, allowNull: false },
		task: { type: longText, allowNull: false },
		misfirePolicy: { type: DataTypes.STRING(16), allowNull: false },
		overlapPolicy: { type: DataTypes.STRING(16), allowNull: false },
		catchUpWindowMs: { type: DataTypes.BIGINT, allowNull: false },
		startAt: { type: DataTypes.BIGINT },
		endAt: { type: DataTypes.BIGINT },
		enabled: { type: DataTypes.BOOLEAN, allowNull: false },
		pausedAt: { type: DataTypes.BIGINT },
		resumedAt: { type: DataTypes.BIGINT },
		createdBy: { type: DataTypes.STRING(128) },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false },
		version: { type: DataTypes.INTEGER, allowNull: false }
	});
}

import type { FireOutcome } from "../lib/contracts.ts";

export { FIRE_OUTCOMES, type FireOutcome } from "../lib/contracts.ts";

/** A row of `job_fires`, the fire ledger. (jobId, fireTime) is unique: claiming it is firing. */
export interface FireRow {
	jobId: string;
	fireTime: number;
	outcome: FireOutcome;
	/** A run-now, not a computed fire time. */
	manual: boolean;
	/** JSON array of the tasks created. */
	taskIds: string | null;
	node: string | null;
	claimedAt: number;
	/** When the task was committed: lateness is firedAt - fireTime. */
	firedAt: number | null;
	/** When its task(s) reached a final state. */
	finishedAt: number | null;
	detail: string | null;
}
