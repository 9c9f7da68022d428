import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";

/** A row of `terminals`: the registry. Presence (online or not) lives in the cache. */
export interface TerminalRow {
	id: string;
	name: string | null;
	/** JSON text of a string map. */
	labels: string;
	concurrency: number;
	enabled: boolean;
	/** Bumped by key rotation; tokens carry it and older ones are refused. */
	keyVersion: number;
	lastActiveAt: number | null;
	/** No new work; told to disconnect once its running tasks have ended. */
	draining: boolean;
	/** Last HTTP pull, ms: a terminal that only polls is online while it polls. */
	pulledAt: number | null;
	/** When the current key version was issued, ms (register or rotation). */
	keyIssuedAt?: number | null;
	/** The key version before the last rotation, still accepted until `previousKeyUntil` (ms). */
	previousKeyVersion?: number | null;
	previousKeyUntil?: number | null;
	createdAt: number;
	updatedAt: number;
}

export type TerminalModel = ModelStatic<Model<TerminalRow, Partial<TerminalRow>>>;

export function defineTerminal(sequelize: Sequelize): TerminalModel {
	return sequelize.define<Model<TerminalRow, Partial<TerminalRow>>>("terminals", {
		id: { type: DataTypes.STRING(128), primaryKey: true },
		name: { type: DataTypes.STRING(255) },
		labels: { type: DataTypes.TEXT, allowNull: false },
		concurrency: { type: DataTypes.INTEGER, allowNull: false },
		enabled: { type: DataTypes.BOOLEAN, allowNull: false },
		keyVersion: { type: DataTypes.INTEGER, allowNull: false },
		lastActiveAt: { type: DataTypes.BIGINT },
		draining: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
		pulledAt: { type: DataTypes.BIGINT },
		keyIssuedAt: { type: DataTypes.BIGINT },
		previousKeyVersion: { type: DataTypes.INTEGER },
		previousKeyUntil: { type: DataTypes.BIGINT },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}
