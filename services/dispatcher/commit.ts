/**
 * Group commit: writes asked for while a commit is under way wait for the next one and share it.
 * Each writer still gets its own answer (rows changed, or its error), and only once its write is
 * durable. Under load a commit carries hundreds of writes for the price of one fsync; alone, a
 * write waits for no one (the first flush starts on the next turn of the event loop).
 */
import { TurnBatcher } from "../../lib/batcher.ts";
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
	private readonly batcher: TurnBatcher<Pending>;
	readonly stats: CommitStats = { commits: 0, statements: 0, largest: 0 };

	private readonly onCommit: ((writes: number, ms: number) => void) | undefined;

	/** `onCommit`: told of each commit, its writes and how long it took (the metrics). */
	constructor(driver: SqlDriver, maxBatch = 2000, onCommit?: (writes: number, ms: number) => void) {
		this.driver = driver;
		this.onCommit = onCommit;
		this.batcher = new TurnBatcher<Pending>({ serial: true, maxItems: maxBatch, flush: batch => this.commit(batch) });
	}

	/** Rows the statement changed, once it is committed. */
	write(sql: string, params: unknown[]): Promise<number> {
		return new Promise((resolve, reject) => this.batcher.add({ sql, params, resolve, reject }));
	}

	/** Resolves when every write asked for so far is committed. */
	drained(): Promise<void> {
		return this.batcher.drained();
	}

	private async commit(batch: Pending[]): Promise<void> {
		this.stats.commits++;
		this.stats.statements += batch.length;
		this.stats.largest = Math.max(this.stats.largest, batch.length);
		const start = performance.now();
		try {
			const answers = await this.driver.batch(batch);
			this.onCommit?.(batch.length, performance.now() - start);
			batch.forEach((pending, i) => {
				const answer = answers[i];
				if (answer instanceof Error) pending.reject(answer);
				else pending.resolve(answer);
			});
		} catch (err) {
			for (const pending of batch) pending.reject(err as Error);
		}
	}
}
