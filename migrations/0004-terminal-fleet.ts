import { DataTypes, type QueryInterface } from "sequelize";

export async function up(qi: QueryInterface): Promise<void> {
	// A draining terminal gets no new work; it is told to disconnect once what it runs has ended.
	await qi.addColumn("terminals", "draining", { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false });
	// When it last pulled over HTTP: a terminal that only polls has no session, yet is online.
	await qi.addColumn("terminals", "pulledAt", { type: DataTypes.BIGINT, allowNull: true });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.removeColumn("terminals", "pulledAt");
	await qi.removeColumn("terminals", "draining");
}
