import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";
import type { Role } from "../lib/contracts.ts";

export interface UserRow {
	id: number;
	username: string;
	/** `scrypt$<salt b64>$<hash b64>` */
	passwordHash: string;
	role: Role;
	/** Cannot log in; every token of the user is refused. */
	disabled: boolean;
	/** ms: tokens issued before this (a password change, a disable) are refused; null for none. */
	tokensValidAfter: number | null;
	createdAt: number;
	updatedAt: number;
}

export type UserModel = ModelStatic<Model<UserRow, Partial<UserRow>>>;

export function defineUser(sequelize: Sequelize): UserModel {
	return sequelize.define<Model<UserRow, Partial<UserRow>>>("users", {
		id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
		username: { type: DataTypes.STRING(64), allowNull: false, unique: true },
		passwordHash: { type: DataTypes.STRING(255), allowNull: false },
		role: { type: DataTypes.STRING(16), allowNull: false },
		disabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
		tokensValidAfter: { type: DataTypes.BIGINT },
		createdAt: { type: DataTypes.BIGINT, allowNull: false },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}
