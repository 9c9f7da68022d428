import { DataTypes, Model, type ModelStatic, type Sequelize } from "sequelize";

/** A row of `runtime_settings`: one setting changed at run time, its value as JSON. */
export interface RuntimeSettingRow {
	key: string;
	value: string;
	updatedBy: string | null;
	updatedAt: number;
}

export type RuntimeSettingModel = ModelStatic<Model<RuntimeSettingRow, RuntimeSettingRow>>;

export function defineRuntimeSetting(sequelize: Sequelize): RuntimeSettingModel {
	return sequelize.define<Model<RuntimeSettingRow, RuntimeSettingRow>>("runtime_settings", {
		key: { type: DataTypes.STRING(64), primaryKey: true },
		value: { type: DataTypes.TEXT, allowNull: false },
		updatedBy: { type: DataTypes.STRING(128) },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}
