/**
 * A node's lease on its role, in the database: a row per holder (`scheduler@node-1`) with an
 * epoch and an expiry, both judged by the database's clock. The holder renews it every third of
 * its length; a node taking over from one that left ends that one's lease at once (`revoke`).
 * Claims are written with `guard()` in their WHERE: a holder whose lease ended — revoked, or run
 * out while the process was frozen (SIGSTOP, a stalled VM) — has its claims refused by the
 * database, whatever it believes. When a renewal finds the lease gone, the holder takes a new
 * epoch and is told (`onLost`), so it can read again what it may have missed.
 *
 * `fresh` is the same question asked of the process's own monotonic clock, for work that never
 * reaches the database (a push queued before a freeze): a process that wakes past its lease
 * drops such work rather than act on a picture that may be stale.
 */
import { performance } from "node:perf_hooks";
import type { Statements } from "./sql/statements.ts";

export interface LeaseOptions {
	/** How long a lease runs without renewal, ms. */
	ttlMs: number;
	onLost?(reason: string): void;
}

/** The database's own clock in ms, in its dialect. */
export function dbNow(dialect: string): string {
	return dialect === "sqlite"
		? "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
		: "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";
}

export class NodeLease {
	readonly holder: string;
	epoch = 0;
	private readonly sql: Statements;
	private readonly options: LeaseOptions;
	private renewedAt = 0;
	private timer: NodeJS.Timeout | null = null;
	private renewing: Promise<boolean> | null = null;

	constructor(sql: Statements, holder: string, options: LeaseOptions) {
		this.sql = sql;
		this.holder = holder;
		this.options = options;
	}

	private get now(): string {
		return dbNow(this.sql.dialect);
	}

	/** Takes the lease with a new epoch (one more than this holder's last) and starts renewing it. */
	async start(): Promise<void> {
		await this.acquire();
		this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.options.ttlMs / 3)));
		this.timer.unref();
	}

	stop(): void {
		if (this.timer) clearInterval(this.timer);
		this.timer = null;
	}

	/** True while the lease has been renewed within its length, by this process's monotonic clock. */
	get fresh(): boolean {
		return performance.now() - this.renewedAt < this.options.ttlMs;
	}

	/** `EXISTS (…)`: true in the database while this epoch's lease runs. Params from `$from`. */
	guard(from: number): { sql: string; params: unknown[] } {
		return {
			sql: `EXISTS (SELECT 1 FROM node_leases WHERE holder = $${from} AND epoch = $${from + 1} AND expiresAt > ${this.now})`,
			params: [this.holder, this.epoch]
		};
	}

	/** Extends the lease; false when it was gone (revoked or run out), after taking a new epoch. */
	renew(): Promise<boolean> {
		this.renewing ??= this.renewOnce().finally(() => (this.renewing = null));
		return this.renewing;
	}

	private async renewOnce(): Promise<boolean> {
		const wokeLate = performance.now() - this.renewedAt >= this.options.ttlMs;
		let renewed: number;
		try {
			renewed = await this.sql.run(
				`UPDATE node_leases SET expiresAt = ${this.now} + $1, renewedAt = ${this.now} WHERE holder = $2 AND epoch = $3 AND expiresAt > ${this.now}`,
				[this.options.ttlMs, this.holder, this.epoch]
			);
		} catch {
			return false; // The database is away: the lease runs out on its own; renewals go on trying.
		}
		if (renewed === 1 && !wokeLate) {
			this.renewedAt = performance.now();
			return true;
		}
		const before = this.epoch;
		await this.acquire();
		this.options.onLost?.(
			renewed === 1
				? `the process was held past its lease (epoch ${before}); now epoch ${this.epoch}`
				: `epoch ${before} was ended by another node or ran out; now epoch ${this.epoch}`
		);
		return false;
	}

	/** Ends another holder's lease (it left the cluster): its claims are refused from now on. */
	async revoke(holder: string): Promise<void> {
		await this.sql.run("UPDATE node_leases SET expiresAt = 0 WHERE holder = $1", [holder]);
	}

	private async acquire(): Promise<void> {
		for (let tries = 0; ; tries++) {
			const [row] = await this.sql.select<{ epoch: number | string }>("SELECT epoch FROM node_leases WHERE holder = $1", [
				this.holder
			]);
			const epoch = Number(row?.epoch ?? 0) + 1;
			const params = [this.holder, epoch, this.options.ttlMs, row ? Number(row.epoch) : 0];
			const changed = row
				? await this.sql.run(
						`UPDATE node_leases SET epoch = $2, expiresAt = ${this.now} + $3, renewedAt = ${this.now} WHERE holder = $1 AND epoch = $4`,
						params
					)
				: await this.sql
						.run(
							`INSERT INTO node_leases (holder, epoch, expiresAt, renewedAt) VALUES ($1, $2, ${this.now} + $3, ${this.now})`,
							params.slice(0, 3)
						)
						.catch(() => 0);
			if (changed === 1) {
				this.epoch = epoch;
				this.renewedAt = performance.now();
				return;
			}
			if (tries >= 5) throw new Error(`Could not take the lease of ${this.holder}`);
		}
	}
}
