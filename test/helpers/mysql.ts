/**
 * A fresh MariaDB/MySQL database per suite, on the server the machine runs
 * (TERN_TEST_MYSQL, default mysql://root@127.0.0.1:3306), dropped when the suite ends.
 */
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";

export const MYSQL_SERVER = (process.env.TERN_TEST_MYSQL ?? "mysql://root@127.0.0.1:3306").replace(/\/+$/, "");

export class TestDatabase {
	readonly name: string;
	/** DB_URI of the database. */
	readonly uri: string;

	constructor(name: string) {
		this.name = name;
		this.uri = `${MYSQL_SERVER}/${name}`;
	}

	/** Creates `<prefix>_<random>`. */
	static async create(prefix: string): Promise<TestDatabase> {
		const db = new TestDatabase(`${prefix}_${randomBytes(4).toString("hex")}`);
		await db.server(conn => conn.query(`CREATE DATABASE \`${db.name}\``));
		return db;
	}

	/** Rows of a query run in this database. */
	async query<T = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<T[]> {
		const conn = await mysql.createConnection({ uri: this.uri });
		try {
			const [rows] = await conn.query(sql, values);
			return rows as T[];
		} finally {
			await conn.end();
		}
	}

	async drop(): Promise<void> {
		await this.server(conn => conn.query(`DROP DATABASE IF EXISTS \`${this.name}\``));
	}

	private async server(work: (conn: mysql.Connection) => Promise<unknown>): Promise<void> {
		const conn = await mysql.createConnection({ uri: MYSQL_SERVER });
		try {
			await work(conn);
		} finally {
			await conn.end();
		}
	}
}
