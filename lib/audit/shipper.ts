/**
 * Carries audit entries from the node where the calls ran to the audit service, off the callers'
 * path: entries of one event-loop turn (of 25 ms, when busy) go as one `audit.record` call
 * (lib/batcher.ts). When the
 * audit service cannot be reached, the batch is retried with a growing delay while new entries
 * wait behind it, up to `maxQueued`; past that, new entries are dropped and counted, and the count
 * is logged. At-least-once: a batch whose answer was lost (a timeout) may be written twice.
 */
import { TurnBatcher } from "../batcher.ts";
import type { AuditEntry } from "../contracts/security.ts";

export interface ShipperLogger {
	warn(...args: unknown[]): void;
	info(...args: unknown[]): void;
}

export interface ShipperOptions<T> {
	/** Sends one batch (`audit.record`); a rejection means "not written, try again". */
	send(entries: AuditEntry[]): Promise<unknown>;
	/** Turns what was queued into an entry, when its batch goes (so the caller's turn does not pay). */
	build(item: T): AuditEntry;
	logger: ShipperLogger;
	/** Entries waiting at most; more are dropped and logged. @defaultValue 10000 */
	maxQueued?: number;
	/** Entries per `audit.record` call. @defaultValue 500 */
	maxBatch?: number;
	/**
	 * Busy, a batch goes at most this often, so that a steady stream of calls is a few inserts a
	 * second rather than one per call (lib/batcher.ts); quiet, at the end of its turn. @defaultValue 25
	 */
	minIntervalMs?: number;
	/** First retry delay, ms; doubled each failure. @defaultValue 100 */
	retryMinMs?: number;
	/** @defaultValue 30000 */
	retryMaxMs?: number;
}

/**
 * The audit service said no to the batch itself (a 4xx that is not retryable): sending it again
 * would get the same answer. An audit service that is not there (SERVICE_NOT_FOUND, 404) is
 * retryable, and is retried.
 */
function refused(err: unknown): boolean {
	const { code, retryable } = (err ?? {}) as { code?: unknown; retryable?: unknown };
	return retryable !== true && typeof code === "number" && code >= 400 && code < 500;
}

export class AuditShipper<T> {
	private readonly options: ShipperOptions<T>;
	private readonly maxQueued: number;
	private readonly batcher: TurnBatcher<T>;
	private retryTimer: NodeJS.Timeout | null = null;
	private wakeRetry: (() => void) | null = null;
	private closed = false;
	/** Entries dropped since the last log line about it. */
	private dropped = 0;
	private failing = false;
	/** Entries written, and dropped, since the start (for tests and the logs). */
	readonly counts = { shipped: 0, dropped: 0 };

	constructor(options: ShipperOptions<T>) {
		this.options = options;
		this.maxQueued = options.maxQueued ?? 10_000;
		this.batcher = new TurnBatcher<T>({
			serial: true,
			maxItems: options.maxBatch ?? 500,
			minIntervalMs: options.minIntervalMs ?? 25,
			flush: items => this.ship(items),
			onError: err => options.logger.warn("Audit entries could not be prepared:", (err as Error).message)
		});
	}

	/** Queues one call for the log; never throws, never waits. */
	add(item: T): void {
		if (this.closed || this.batcher.size >= this.maxQueued) {
			this.drop(1, this.closed ? "the node is stopping" : `the queue is full (${this.maxQueued})`);
			return;
		}
		this.batcher.add(item);
	}

	/** Entries waiting (not the batch being sent). */
	get queued(): number {
		return this.batcher.size;
	}

	/**
	 * Sends what waits, for at most `timeoutMs` (not at all while the audit service is away); what
	 * is still unsent then is dropped and logged. No entry is taken after this.
	 */
	async close(timeoutMs: number): Promise<void> {
		// While the audit service is away, waiting would only hold the node's stop up.
		if (!this.failing) {
			let timer: NodeJS.Timeout | undefined;
			const deadline = new Promise<void>(resolve => (timer = setTimeout(resolve, timeoutMs)));
			await Promise.race([this.batcher.drained(), deadline]);
			clearTimeout(timer);
		}
		this.closed = true;
		this.wake();
		// What is still waiting now is dropped at once (and counted), not sent.
		await this.batcher.drained();
		this.reportDrops();
	}

	private ship(items: T[]): Promise<void> {
		return this.shipEntries(items.map(item => this.options.build(item)));
	}

	private async shipEntries(entries: AuditEntry[]): Promise<void> {
		for (let failures = 0; ; failures++) {
			if (this.closed && (failures > 0 || this.failing)) {
				this.drop(entries.length, "the node is stopping");
				return;
			}
			try {
				await this.options.send(entries);
				this.counts.shipped += entries.length;
				if (this.failing) this.options.logger.info(`Audit log reachable again: ${entries.length} entries written`);
				this.failing = false;
				this.reportDrops();
				return;
			} catch (err) {
				// A batch the audit service refuses (4xx: it will never take it) is not retried: it
				// would hold every entry behind it forever. Its halves are, down to the entry at fault.
				if (refused(err)) {
					if (entries.length === 1) {
						this.options.logger.warn(`Audit log refused an entry (${entries[0]!.action}): ${(err as Error).message}`);
						this.drop(1, "refused by the audit service");
						return;
					}
					const half = Math.ceil(entries.length / 2);
					await this.shipEntries(entries.slice(0, half));
					await this.shipEntries(entries.slice(half));
					return;
				}
				if (!this.failing)
					this.options.logger.warn(`Audit log unreachable, entries wait and are retried: ${(err as Error).message}`);
				this.failing = true;
				await this.pause(Math.min((this.options.retryMinMs ?? 100) * 2 ** failures, this.options.retryMaxMs ?? 30_000));
			}
		}
	}

	private pause(ms: number): Promise<void> {
		return new Promise(resolve => {
			this.wakeRetry = resolve;
			this.retryTimer = setTimeout(resolve, ms);
			this.retryTimer.unref();
		});
	}

	private wake(): void {
		if (this.retryTimer) clearTimeout(this.retryTimer);
		this.retryTimer = null;
		this.wakeRetry?.();
		this.wakeRetry = null;
	}

	private drop(n: number, why: string): void {
		this.dropped += n;
		this.counts.dropped += n;
		// One line per outage, not one per entry: the rest is counted and told when it ends.
		if (this.dropped === n) this.options.logger.warn(`Audit entries are being dropped: ${why}`);
	}

	private reportDrops(): void {
		if (this.dropped === 0) return;
		this.options.logger.warn(`Audit log: ${this.dropped} entries were dropped (queue full or node stopping)`);
		this.dropped = 0;
	}
}
