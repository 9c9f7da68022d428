/**
 * How the stores' statements (scheduler, alert) reach the database: SQL with numbered placeholders (`$1`, `$2`, …)
 * and the values beside it, bound by the driver, on the node's shared Sequelize connection.
 *
 * MySQL goes through Sequelize's `bind` (a prepared statement). SQLite goes to the sqlite3
 * driver directly, with `?1`, `?2`, … and the values by position: Sequelize hands SQLite its
 * values by name, and the driver looks each name up among all of the statement's parameters,
 * which made a batch of 500 claims (3,000 values) ten times slower than the insert itself.
 */
import { QueryTypes, UniqueConstraintError, type Sequelize } from "sequelize";

/** The part of the sqlite3 driver's connection used here. */
interface SqliteConnection {
	all(sql: string, params: unknown[], done: (err: Error | null, rows: unknown[]) => void): void;
	run(sql: string, params: unknown[], done: (this: { changes: number }, err: Error | null) => void): void;
}

const sqliteParams = (sql: string) => sql.replace(/\$(\d+)/g, "?$1");

export class Statements {
	private readonly sequelize: Sequelize;
	readonly dialect: string;

	constructor(sequelize: Sequelize) {
		this.sequelize = sequelize;
		this.dialect = sequelize.getDialect();
	}

	/** Rows of a SELECT. */
	async select<T extends object>(sql: string, params: unknown[]): Promise<T[]> {
		if (this.dialect !== "sqlite") return this.sequelize.query<T>(sql, { bind: params, type: QueryTypes.SELECT, raw: true });
		const connection = await this.sqlite();
		return new Promise((resolve, reject) =>
			connection.all(sqliteParams(sql), params, (err, rows) => (err ? reject(err) : resolve(rows as T[])))
		);
	}

	/** An INSERT, UPDATE or DELETE; answers the rows it changed. */
	async run(sql: string, params: unknown[]): Promise<number> {
		if (this.dialect !== "sqlite") {
			const [, changed] = (await this.sequelize.query(sql, { bind: params, type: QueryTypes.UPDATE })) as [unknown, number];
			return Number(changed);
		}
		const connection = await this.sqlite();
		return new Promise((resolve, reject) =>
			connection.run(sqliteParams(sql), params, function (err) {
				if (err) reject(err);
				else resolve(this.changes);
			})
		);
	}

	/** The connection Sequelize itself uses (SQLite has one, see lib/db.ts). */
	private sqlite(): Promise<SqliteConnection> {
		const manager = this.sequelize.connectionManager as unknown as {
			getConnection(options: object): Promise<SqliteConnection>;
		};
		return manager.getConnection({});
	}
}

/** A write refused by a primary key or unique index, in either dialect. */
export function isDuplicate(err: unknown): boolean {
	if (err instanceof UniqueConstraintError) return true;
	const { code, message } = err as { code?: string; message?: string };
	return code === "SQLITE_CONSTRAINT" && /UNIQUE|PRIMARY KEY/.test(message ?? "");
}
