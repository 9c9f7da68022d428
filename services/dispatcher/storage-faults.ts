/**
 * Which failures mean "the database is away" rather than "this statement is wrong", and a
 * deadline on every statement, so that a database that hangs (a stopped server, a network that
 * drops packets) is found as surely as one that refuses: an answer that does not come within
 * `deadlineMs` is a storage fault too.
 */
import type { SqlDriver, Statement } from "./sql.ts";

/** The database did not answer within the deadline. */
export class StorageTimeoutError extends Error {
	readonly code = "STORAGE_TIMEOUT";
	constructor(ms: number) {
		super(`The database did not answer within ${ms} ms`);
		this.name = "StorageTimeoutError";
	}
}

const NETWORK_CODES = new Set([
	"STORAGE_TIMEOUT",
	"ECONNREFUSED",
	"ECONNRESET",
	"ETIMEDOUT",
	"EPIPE",
	"EHOSTUNREACH",
	"ENETUNREACH",
	"ENOTFOUND",
	"EAI_AGAIN",
	"PROTOCOL_CONNECTION_LOST",
	"PROTOCOL_SEQUENCE_TIMEOUT",
	"ER_SERVER_SHUTDOWN",
	"ER_CON_COUNT_ERROR",
	"ER_TOO_MANY_USER_CONNECTIONS",
	"SQLITE_IOERR",
	"SQLITE_FULL",
	"SQLITE_CANTOPEN"
]);

/** True when `err` says the database cannot be reached or cannot write, not that a statement is bad. */
export function isStorageFault(err: unknown): boolean {
	const e = err as { code?: string; fatal?: boolean; errno?: number; message?: string } | null;
	if (!e || typeof e !== "object") return false;
	if (e.fatal === true) return true;
	if (e.code && NETWORK_CODES.has(e.code)) return true;
	// mysql2 pool errors without a code: "Pool is closed", "connect ETIMEDOUT", "Connection lost".
	return (
		typeof e.message === "string" &&
		/Pool is closed|Connection lost|connect ETIMEDOUT|Can't add new command when connection is in closed state/.test(
			e.message
		)
	);
}

function within<T>(ms: number, work: Promise<T>): Promise<T> {
	let timer: NodeJS.Timeout;
	return Promise.race([
		work,
		new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new StorageTimeoutError(ms)), ms);
		})
	]).finally(() => clearTimeout(timer));
}

/** The driver with a deadline on each call. A call that answers late still completes underneath. */
export function withDeadline(driver: SqlDriver, deadlineMs: number): SqlDriver {
	if (deadlineMs <= 0) return driver;
	return {
		dialect: driver.dialect,
		select: <T>(sql: string, params: unknown[]) => within(deadlineMs, driver.select<T>(sql, params)),
		run: (sql: string, params: unknown[]) => within(deadlineMs, driver.run(sql, params)),
		batch: (statements: Statement[]) => within(deadlineMs, driver.batch(statements)),
		close: () => driver.close()
	};
}
