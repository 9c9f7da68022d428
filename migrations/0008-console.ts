import { DataTypes, type QueryInterface } from "sequelize";

export async function up(qi: QueryInterface): Promise<void> {
	// Each task's state changes, one JSON object per line, appended by the UPDATE that makes the
	// change (services/dispatcher/history.ts): the console's task timeline.
	await qi.addColumn("tasks", "history", { type: DataTypes.TEXT, allowNull: true });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.removeColumn("tasks", "history");
}
