/**
 * One Sequelize instance per database URI per process, shared by every service of the node,
 * with the schema brought up to date by versioned migrations before anyone uses it.
 *
 * Sharing matters for SQLite above all: one connection means one writer, so services never
 * meet SQLITE_BUSY from each other. The registry is reference-counted: the last service to
 * stop closes the connection.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Sequelize, type Options } from "sequelize";
import { SequelizeStorage, Umzug } from "umzug";
import { migrations } from "../migrations/index.ts";

interface Entry {
	sequelize: Sequelize;
	refs: number;
	ready: Promise<void>;
}

const registry = new Map<string, Entry>();

export type Dialect = "sqlite" | "mysql";

export function dialectOf(uri: string): Dialect {
	if (uri.startsWith("sqlite:")) return "sqlite";
	if (uri.startsWith("mysql:") || uri.startsWith("mariadb:")) return "mysql";
	throw new TypeError(`Unsupported DB_URI '${uri}': use sqlite://<file> or mysql://user:pass@host:port/db`);
}

/**
 * The database file, its directory 0700 and the file 0600 (SQLite gives its -wal and -shm files
 * the mode of the database file): secrets are sealed in it, but payloads, results and users are not.
 */
function createPrivately(file: string): void {
	mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
	if (existsSync(file)) chmodSync(file, 0o600);
	else closeSync(openSync(file, "a", 0o600));
}

function open(uri: string): Sequelize {
	const common: Options = { logging: false, define: { timestamps: false, freezeTableName: true } };
	if (dialectOf(uri) === "sqlite") {
		const file = uri.replace(/^sqlite:(\/\/)?/, "");
		const storage = file === ":memory:" || file === "" ? ":memory:" : resolve(file);
		if (storage !== ":memory:") createPrivately(storage);
		return new Sequelize({ ...common, dialect: "sqlite", storage, pool: { max: 1, min: 1 } });
	}
	return new Sequelize(uri.replace(/^mariadb:/, "mysql:"), {
		...common,
		dialect: "mysql",
		pool: { max: 10, min: 1, idle: 30_000 },
		dialectOptions: { supportBigNumbers: true }
	});
}

async function prepare(sequelize: Sequelize): Promise<void> {
	await sequelize.authenticate();
	if (sequelize.getDialect() === "sqlite") {
		// WAL lets readers run beside the writer; NORMAL syncs at checkpoints, which survives a
		// process crash (the guarantee Tern makes in embedded mode) without an fsync per commit.
		await sequelize.query("PRAGMA journal_mode = WAL");
		await sequelize.query("PRAGMA synchronous = NORMAL");
		await sequelize.query("PRAGMA busy_timeout = 5000");
	}
	await migrate(sequelize);
}

/**
 * Runs pending migrations. On MySQL a named lock makes nodes that start together take turns,
 * so each migration runs once per cluster.
 */
export async function migrate(sequelize: Sequelize): Promise<void> {
	const umzug = new Umzug({
		migrations: migrations.map(m => ({
			name: m.name,
			up: () => m.up(sequelize.getQueryInterface()),
			down: () => m.down(sequelize.getQueryInterface())
		})),
		storage: new SequelizeStorage({ sequelize, tableName: "tern_migrations" }),
		logger: undefined
	});
	if (sequelize.getDialect() !== "mysql") {
		await umzug.up();
		return;
	}
	await sequelize.transaction(async transaction => {
		await sequelize.query("SELECT GET_LOCK('tern_migrations', 120)", { transaction });
		try {
			await umzug.up();
		} finally {
			await sequelize.query("SELECT RELEASE_LOCK('tern_migrations')", { transaction });
		}
	});
}

/** The shared, migrated instance for `uri`; call `releaseDatabase` once per acquire. */
export async function acquireDatabase(uri: string): Promise<Sequelize> {
	let entry = registry.get(uri);
	if (!entry) {
		const sequelize = open(uri);
		entry = { sequelize, refs: 0, ready: prepare(sequelize) };
		registry.set(uri, entry);
	}
	entry.refs++;
	try {
		await entry.ready;
	} catch (err) {
		await releaseDatabase(uri);
		throw err;
	}
	return entry.sequelize;
}

export async function releaseDatabase(uri: string): Promise<void> {
	const entry = registry.get(uri);
	if (!entry) return;
	entry.refs--;
	if (entry.refs <= 0) {
		registry.delete(uri);
		await entry.sequelize.close();
	}
}
