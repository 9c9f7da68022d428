import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";

/** A row of `login_failures`: consecutive failed logins of one username or one client address. */
export interface LoginFailureRow {
	/** `user:<username>` or `addr:<address>`. */
	key: string;
	failures: number;
	/** ms: logins under this key are refused until then (0: not locked). */
	lockedUntil: number;
	/** ms of the last failure: a key quiet for the lockout window starts over. */
	lastAt: number;
}

export type LoginFailureModel = ModelStatic<Model<LoginFailureRow, LoginFailureRow>>;

export function defineLoginFailure(sequelize: Sequelize): LoginFailureModel {
	return sequelize.define<Model<LoginFailureRow, LoginFailureRow>>("login_failures", {
		key: { type: DataTypes.STRING(191), primaryKey: true },
		failures: { type: DataTypes.INTEGER, allowNull: false },
		lockedUntil: { type: DataTypes.BIGINT, allowNull: false },
		lastAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}
