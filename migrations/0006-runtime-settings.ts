import { DataTypes, type QueryInterface } from "sequelize";

export async function up(qi: QueryInterface): Promise<void> {
	// Settings changed at run time (PUT /api/system/config): they outlive a restart of the cluster.
	await qi.createTable("runtime_settings", {
		key: { type: DataTypes.STRING(64), primaryKey: true },
		value: { type: DataTypes.TEXT, allowNull: false },
		updatedBy: { type: DataTypes.STRING(128), allowNull: true },
		updatedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.dropTable("runtime_settings");
}
