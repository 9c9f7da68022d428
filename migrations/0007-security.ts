import { DataTypes, type QueryInterface } from "sequelize";

const ms = (allowNull: boolean) => ({ type: DataTypes.BIGINT, allowNull });

export async function up(qi: QueryInterface): Promise<void> {
	// The audit log: append-only from the application; each row's hash covers its content and the
	// hash of the row before it in the same chain (one chain per writing node), so that an edited
	// or removed row is found by POST /api/audit/verify.
	await qi.createTable("audit_log", {
		id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
		chain: { type: DataTypes.STRING(128), allowNull: false },
		seq: { type: DataTypes.INTEGER, allowNull: false },
		at: ms(false),
		actor: { type: DataTypes.STRING(191), allowNull: false },
		actorType: { type: DataTypes.STRING(16), allowNull: false },
		action: { type: DataTypes.STRING(64), allowNull: false },
		object: { type: DataTypes.STRING(255), allowNull: true },
		address: { type: DataTypes.STRING(64), allowNull: true },
		userAgent: { type: DataTypes.STRING(255), allowNull: true },
		outcome: { type: DataTypes.STRING(64), allowNull: false },
		changes: { type: DataTypes.TEXT, allowNull: true },
		prevHash: { type: DataTypes.STRING(64), allowNull: false },
		hash: { type: DataTypes.STRING(64), allowNull: false }
	});
	await qi.addIndex("audit_log", ["chain", "seq"], { name: "audit_log_chain_seq", unique: true });
	await qi.addIndex("audit_log", ["at"], { name: "audit_log_at" });
	await qi.addIndex("audit_log", ["actor"], { name: "audit_log_actor" });
	await qi.addIndex("audit_log", ["action"], { name: "audit_log_action" });
	await qi.addIndex("audit_log", ["object"], { name: "audit_log_object" });

	// Tokens refused before their expiry (logout, revocation), by `jti`; kept until they would expire.
	await qi.createTable("revoked_tokens", {
		jti: { type: DataTypes.STRING(64), primaryKey: true },
		expiresAt: ms(false),
		revokedAt: ms(false)
	});

	// Long-lived, scoped API tokens of users; only the secret's hash is kept.
	await qi.createTable("api_tokens", {
		id: { type: DataTypes.STRING(36), primaryKey: true },
		name: { type: DataTypes.STRING(64), allowNull: false },
		userId: { type: DataTypes.INTEGER, allowNull: false },
		scope: { type: DataTypes.STRING(16), allowNull: false },
		secretHash: { type: DataTypes.STRING(128), allowNull: false },
		createdAt: ms(false),
		expiresAt: ms(true),
		lastUsedAt: ms(true),
		revokedAt: ms(true)
	});
	await qi.addIndex("api_tokens", ["userId", "name"], { name: "api_tokens_user_name", unique: true });

	// Failed logins per user and per address: the lockout, shared by every api replica.
	await qi.createTable("login_failures", {
		key: { type: DataTypes.STRING(191), primaryKey: true },
		failures: { type: DataTypes.INTEGER, allowNull: false },
		lockedUntil: ms(false),
		lastAt: ms(false)
	});

	// A disabled user cannot log in and its tokens are refused; tokens issued before
	// `tokensValidAfter` (a password change) are refused too.
	await qi.addColumn("users", "disabled", { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false });
	await qi.addColumn("users", "tokensValidAfter", ms(true));

	// Terminal credentials expire; after a rotation the previous key version is still taken until
	// `previousKeyUntil` (the grace period).
	await qi.addColumn("terminals", "keyIssuedAt", ms(true));
	await qi.addColumn("terminals", "previousKeyVersion", { type: DataTypes.INTEGER, allowNull: true });
	await qi.addColumn("terminals", "previousKeyUntil", ms(true));

	// A task's secrets, sealed (AES-256-GCM, key id beside the value); never in `payload`.
	await qi.addColumn("tasks", "secrets", { type: DataTypes.TEXT, allowNull: true });
	// A script body marked sensitive is stored sealed.
	await qi.addColumn("scripts", "sensitive", { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false });
}

export async function down(qi: QueryInterface): Promise<void> {
	await qi.removeColumn("scripts", "sensitive");
	await qi.removeColumn("tasks", "secrets");
	await qi.removeColumn("terminals", "previousKeyUntil");
	await qi.removeColumn("terminals", "previousKeyVersion");
	await qi.removeColumn("terminals", "keyIssuedAt");
	await qi.removeColumn("users", "tokensValidAfter");
	await qi.removeColumn("users", "disabled");
	await qi.dropTable("login_failures");
	await qi.dropTable("api_tokens");
	await qi.dropTable("revoked_tokens");
	await qi.dropTable("audit_log");
}
