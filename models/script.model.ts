import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";

export const INTERPRETERS = ["sh", "bash", "python3", "node"] as const;
export type Interpreter = (typeof INTERPRETERS)[number];

/** A row of `scripts`: one version of a named script. Versions are never changed. */
export interface ScriptRow {
	name: string;
	version: number;
	interpreter: Interpreter;
	body: string;
	/** Hex SHA-256 of the body, for agents' caches. */
	sha256: string;
	createdBy: string | null;
	createdAt: number;
	/** The body is sealed (services/scripts/sensitive.ts). */
	sensitive?: boolean;
}

export type ScriptModel = ModelStatic<Model<ScriptRow, Partial<ScriptRow>>>;

export function defineScript(sequelize: Sequelize): ScriptModel {
	const longText = sequelize.getDialect() === "mysql" ? DataTypes.TEXT("medium") : DataTypes.TEXT;
	return sequelize.define<Model<ScriptRow, Partial<ScriptRow>>>("scripts", {
		name: { type: DataTypes.STRING(128), primaryKey: true },
		version: { type: DataTypes.INTEGER, primaryKey: true },
		interpreter: { type: DataTypes.STRING(16), allowNull: false },
		body: { type: longText, allowNull: false },
		sha256: { type: DataTypes.STRING(64), allowNull: false },
		createdBy: { type: DataTypes.STRING(128) },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		sensitive: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false }
	});
}
