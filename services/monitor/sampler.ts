/**
 * One reading of the cluster per tick: the fleet (terminals), the queue (dispatcher), the
 * database's round trip, the dispatchers' storage. Each part is read on its own; a part that fails to answer is null, so
 * that a rule on it waits rather than resolving an alert it can no longer see.
 */
import type { Logger } from "moleculer";
import type { Sequelize } from "sequelize";
import { call, type Caller } from "../../lib/actions.ts";
import type { NodeStorage } from "../../lib/contracts.ts";
import type { Snapshot } from "./signals.ts";

export interface SamplerOptions {
	/** A ping that has not answered within this long counts as unreachable, ms. @defaultValue 5000 */
	dbPingTimeout: number;
	/** Calls to the other services give up after this long, ms. @defaultValue 3000 */
	callTimeout: number;
}

/** Runs `work`, or rejects after `ms`. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	try {
		return await Promise.race([
			work,
			new Promise<never>(
				(_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))
			)
		]);
	} finally {
		clearTimeout(timer);
	}
}

export class Sampler {
	private readonly caller: Caller;
	private readonly db: () => Sequelize | null;
	private readonly options: SamplerOptions;
	private readonly logger: Logger;

	/** Each dispatcher's storage (degraded mode); none known by default. */
	private readonly readStorage: () => Promise<NodeStorage[]>;

	constructor(
		caller: Caller,
		db: () => Sequelize | null,
		options: SamplerOptions,
		logger: Logger,
		storage: () => Promise<NodeStorage[]> = async () => []
	) {
		this.readStorage = storage;
		this.caller = caller;
		this.db = db;
		this.options = options;
		this.logger = logger;
	}

	async sample(nodesDown: Snapshot["nodesDown"], now = Date.now()): Promise<Snapshot> {
		const timeout = this.options.callTimeout;
		const [terminals, tasks, database, storage] = await Promise.all([
			call(this.caller, "terminals.summary", {}, { timeout }).catch(err => this.unread("terminals", err)),
			call(this.caller, "dispatcher.stats", {}, { timeout })
				.then(stats => ({ byStatus: stats.tasks, oldestPendingAt: stats.oldestPendingAt }))
				.catch(err => this.unread("tasks", err)),
			this.ping(),
			this.storage()
		]);
		const degraded = storage && storage.filter(s => s.degraded);
		return { at: now, terminals, tasks, database, nodesDown, degraded };
	}

	/** `SELECT 1`'s round trip; a failure or a timeout is "unreachable" at the timeout's length. */
	private async ping(): Promise<Snapshot["database"]> {
		const db = this.db();
		if (!db) return null;
		const started = performance.now();
		try {
			await within(db.query("SELECT 1"), this.options.dbPingTimeout, "SELECT 1");
			return { latencySeconds: (performance.now() - started) / 1000, error: null };
		} catch (err) {
			return { latencySeconds: this.options.dbPingTimeout / 1000, error: (err as Error).message };
		}
	}

	private async storage(): Promise<NodeStorage[] | null> {
		try {
			return await this.readStorage();
		} catch (err) {
			return this.unread("storage", err);
		}
	}

	private unread(part: string, err: unknown): null {
		this.logger.debug(`The monitor could not read ${part}:`, (err as Error).message);
		return null;
	}
}
