import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";
import type { TokenScope } from "../lib/contracts.ts";

/** A row of `api_tokens`: a long-lived, scoped token of a user. Only the secret's hash is kept. */
export interface ApiTokenRow {
	id: string;
	name: string;
	userId: number;
	scope: TokenScope;
	/** Hex SHA-256 of the secret: the secret is 32 random bytes, so a slow hash adds nothing. */
	secretHash: string;
	createdAt: number;
	expiresAt: number | null;
	lastUsedAt: number | null;
	revokedAt: number | null;
}

export type ApiTokenModel = ModelStatic<Model<ApiTokenRow, ApiTokenRow>>;

export function defineApiToken(sequelize: Sequelize): ApiTokenModel {
	return sequelize.define<Model<ApiTokenRow, ApiTokenRow>>("api_tokens", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		name: { type: DataTypes.STRING(64), allowNull: false },
		userId: { type: DataTypes.INTEGER, allowNull: false },
		scope: { type: DataTypes.STRING(16), allowNull: false },
		secretHash: { type: DataTypes.STRING(128), allowNull: false },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		expiresAt: { type: DataTypes.BIGINT },
		lastUsedAt: { type: DataTypes.BIGINT },
		revokedAt: { type: DataTypes.BIGINT }
	});
}
