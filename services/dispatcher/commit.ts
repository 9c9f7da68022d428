/**
 * Group commit: writes asked for while a commit is under way wait for the next one and share it.
 * Each writer still gets its own answer (rows changed, or its error), and only once its write is
 * durable. Under load a commit carries hundreds of writes for the price of one fsync; alone, a
 * write waits for no one (the first flush starts on the next turn of the event loop).
 */
import type { SqlDriver, Statement } from "./sql.ts";

interface Pending extends Statement {
	resolve(changed: number): void;
	reject(err: Error): void;
}

export interface CommitStats {
	commits: number;
	statements: number;
	largest: number;
}

export class GroupCommit {
	private readonly driver: SqlDriver;
	private readonly maxBatch: number;
	private queue: Pending[] = [];
	private flushing = false;
	private scheduled = false;
	readonly stats: CommitStats = { commits: 0, statements: 0, largest: 0 };

	constructor(driver: SqlDriver, maxBatch = 2000) {
		this.driver = driver;
		this.maxBatch = maxBatch;
	}

	/** Rows the statement changed, once it is committed. */
	write(sql: string, params: unknown[]): Promise<number> {
		return new Promise((resolve, reject) => {
			this.queue.push({ sql, params, resolve, reject });
			if (!this.flushing && !this.scheduled) {
				this.scheduled = true;
				setImmediate(() => void this.flush());
			}
		});
	}

	/** Resolves when every write asked for so far is committed. */
	async drained(): Promise<void> {
		while (this.flushing || this.scheduled || this.queue.length > 0) await new Promise(resolve => setTimeout(resolve, 5));
	}

	private async flush(): Promise<void> {
		this.scheduled = false;
		this.flushing = true;
		try {
			while (this.queue.length > 0) {
				const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
				this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
				this.stats.commits++;
				this.stats.statements += batch.length;
				this.stats.largest = Math.max(this.stats.largest, batch.length);
				try {
					const answers = await this.driver.batch(batch);
					batch.forEach((pending, i) => {
						const answer = answers[i];
						if (answer instanceof Error) pending.reject(answer);
						else pending.resolve(answer);
					});
				} catch (err) {
					for (const pending of batch) pending.reject(err as Error);
				}
			}
		} finally {
			this.flushing = false;
		}
	}
}
