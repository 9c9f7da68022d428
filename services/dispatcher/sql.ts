/**
 * The dispatcher's own connection to its database, below Sequelize, for the statements on every
 * task's path. Two things matter there: a statement costs what the driver costs and no more, and
 * many writes share one commit (see GroupCommit).
 *
 * MySQL/MariaDB: a mysql2 pool of its own that may send many statements in one round trip, so a
 * whole batch is `START TRANSACTION; …; COMMIT` at the price of one fsync. SQLite: the node's one
 * shared connection (the one Sequelize holds, so every service still has a single writer), with a
 * batch's statements queued back to back between BEGIN and COMMIT.
 */
import { createPool, format as formatSql, type Pool, type ResultSetHeader } from "mysql2/promise";
import type { Database } from "sqlite3";
import type { Sequelize } from "sequelize";

export interface Statement {
	sql: string;
	params: unknown[];
}

/** A unique key (the idempotency key, an id) is already taken. */
export class DuplicateKeyError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "DuplicateKeyError";
	}
}

export interface SqlDriver {
	readonly dialect: "mysql" | "sqlite";
	select<T>(sql: string, params: unknown[]): Promise<T[]>;
	/** Rows changed by one statement, committed on its own. */
	run(sql: string, params: unknown[]): Promise<number>;
	/**
	 * The statements in order in one transaction: rows changed by each, or the error of each that
	 * failed (the others still count). An error of the commit itself rejects.
	 */
	batch(statements: Statement[]): Promise<(number | Error)[]>;
	close(): Promise<void>;
}

/** `?` for each element of an array parameter, so one SQL text serves both drivers. */
export function expand(sql: string, params: unknown[]): Statement {
	if (!params.some(Array.isArray)) return { sql, params };
	let index = 0;
	const flat: unknown[] = [];
	const text = sql.replace(/\?/g, () => {
		const value = params[index++];
		if (!Array.isArray(value)) {
			flat.push(value);
			return "?";
		}
		flat.push(...value);
		return value.length === 0 ? "NULL" : value.map(() => "?").join(", ");
	});
	return { sql: text, params: flat };
}

/** The statement with its values escaped in (mysql2's client-side formatting; arrays become lists). */
function format(sql: string, params: unknown[]): string {
	return formatSql(sql, params as Parameters<typeof formatSql>[1]);
}

function isDuplicate(err: unknown): boolean {
	const e = err as { code?: string; errno?: number; message?: string };
	return e?.code === "ER_DUP_ENTRY" || e?.errno === 1062 || (e?.code === "SQLITE_CONSTRAINT" && /UNIQUE/.test(e.message ?? ""));
}

function translate(err: unknown): Error {
	if (isDuplicate(err)) return new DuplicateKeyError((err as Error).message);
	return err instanceof Error ? err : new Error(String(err));
}

// ---------------------------------------------------------------- MySQL / MariaDB

class MysqlDriver implements SqlDriver {
	readonly dialect = "mysql" as const;
	private readonly pool: Pool;

	constructor(uri: string) {
		this.pool = createPool({
			uri: uri.replace(/^mariadb:/, "mysql:"),
			multipleStatements: true,
			supportBigNumbers: true,
			connectionLimit: 6,
			maxIdle: 6,
			enableKeepAlive: true
		});
	}

	async select<T>(sql: string, params: unknown[]): Promise<T[]> {
		try {
			const [rows] = await this.pool.query(format(sql, params));
			return rows as T[];
		} catch (err) {
			throw translate(err);
		}
	}

	async run(sql: string, params: unknown[]): Promise<number> {
		try {
			const [header] = await this.pool.query<ResultSetHeader>(format(sql, params));
			return header.affectedRows;
		} catch (err) {
			throw translate(err);
		}
	}

	async batch(statements: Statement[]): Promise<(number | Error)[]> {
		if (statements.length === 1) {
			try {
				return [await this.run(statements[0].sql, statements[0].params)];
			} catch (err) {
				return [translate(err)];
			}
		}
		const connection = await this.pool.getConnection();
		try {
			const text = statements.map(s => format(s.sql, s.params)).join(";\n");
			try {
				const [results] = await connection.query<ResultSetHeader[]>(`START TRANSACTION;\n${text};\nCOMMIT`);
				return results.slice(1, statements.length + 1).map(r => r.affectedRows);
			} catch {
				// One statement failed (a taken key, most likely) and stopped the rest: start over,
				// each statement on its own, so each gets its own answer.
				await connection.query("ROLLBACK").catch(() => undefined);
			}
			const answers: (number | Error)[] = [];
			for (const s of statements) {
				try {
					const [header] = await connection.query<ResultSetHeader>(format(s.sql, s.params));
					answers.push(header.affectedRows);
				} catch (err) {
					answers.push(translate(err));
				}
			}
			return answers;
		} finally {
			connection.release();
		}
	}

	private closed = false;

	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		// Connections the server or the network already closed make end() complain; nothing is left to do.
		await this.pool.end().catch(() => undefined);
	}
}

// ---------------------------------------------------------------- SQLite

class SqliteDriver implements SqlDriver {
	readonly dialect = "sqlite" as const;
	private readonly db: Database;

	constructor(db: Database) {
		this.db = db;
	}

	select<T>(sql: string, params: unknown[]): Promise<T[]> {
		const s = expand(sql, params);
		return new Promise((resolve, reject) =>
			this.db.all(s.sql, s.params, (err, rows) => (err ? reject(translate(err)) : resolve(rows as T[])))
		);
	}

	run(sql: string, params: unknown[]): Promise<number> {
		const s = expand(sql, params);
		return new Promise((resolve, reject) =>
			this.db.run(s.sql, s.params, function (err) {
				if (err) reject(translate(err));
				else resolve(this.changes);
			})
		);
	}

	batch(statements: Statement[]): Promise<(number | Error)[]> {
		if (statements.length === 1)
			return this.run(statements[0].sql, statements[0].params).then(
				n => [n],
				err => [translate(err)]
			);
		const answers: (number | Error)[] = new Array(statements.length);
		return new Promise((resolve, reject) => {
			// Queued in one go: nothing else on the connection runs between BEGIN and COMMIT's turn
			// in the queue but statements that are harmless inside it.
			this.db.serialize(() => {
				let began: Error | null = null;
				this.db.run("BEGIN", err => (began = err));
				statements.forEach((statement, i) => {
					const s = expand(statement.sql, statement.params);
					this.db.run(s.sql, s.params, function (err) {
						answers[i] = err ? translate(err) : began ? translate(began) : this.changes;
					});
				});
				this.db.run("COMMIT", err => {
					if (began) return reject(translate(began));
					if (!err) return resolve(answers);
					this.db.run("ROLLBACK", () => reject(translate(err)));
				});
			});
		});
	}

	async close(): Promise<void> {
		// The connection is Sequelize's; it closes it.
	}
}

/** The driver for a node's database; `uri` is the node's DB_URI. */
export async function openDriver(sequelize: Sequelize, uri: string): Promise<SqlDriver> {
	if (sequelize.getDialect() === "sqlite") {
		const manager = sequelize.connectionManager as unknown as { getConnection(options: object): Promise<Database> };
		return new SqliteDriver(await manager.getConnection({}));
	}
	return new MysqlDriver(uri);
}
