import { DataTypes, type QueryInterface } from "sequelize";

export async function up(qi: QueryInterface): Promise<void> {
	// One row per node and role: its current epoch and until when its lease runs (lib/lease.ts).
	// A claim is written only while the claimant's epoch is current; a node that takes over from
	// one that left ends that one's lease first, so a frozen node that wakes writes nothing.
	await qi.createTable("node_leases", {
		holder: { type: DataTypes.STRING(160), primaryKey: true },
		epoch: { type: DataTypes.BIGINT, allowNull: false },
		expiresAt: { type: DataTypes.BIGINT, allowNull: false },
		renewedAt: { type: DataTypes.BIGINT, allowNull: false }
	});
	// The epoch under which a fire was claimed.
	await qi.addColumn("job_fires", "epoch", { type: DataTypes.BIGINT, allowNull: true });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.removeColumn("job_fires", "epoch");
	await qi.dropTable("node_leases");
}
