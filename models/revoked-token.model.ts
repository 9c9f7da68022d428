import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";

/** A row of `revoked_tokens`: a JWT refused before its expiry (logout), kept until it would expire. */
export interface RevokedTokenRow {
	jti: string;
	/** ms: when the token expires anyway; the row is purged after. */
	expiresAt: number;
	revokedAt: number;
}

export type RevokedTokenModel = ModelStatic<Model<RevokedTokenRow, RevokedTokenRow>>;

export function defineRevokedToken(sequelize: Sequelize): RevokedTokenModel {
	return sequelize.define<Model<RevokedTokenRow, RevokedTokenRow>>("revoked_tokens", {
		jti: { type: DataTypes.STRING(64), primaryKey: true },
		expiresAt: { type: DataTypes.BIGINT, allowNull: false },
		revokedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}
