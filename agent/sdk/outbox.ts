/**
 * Results on their way to Tern: every result is held in the ledger (`done`) until Tern takes it
 * (`sent`) or refuses it for good (`refused`). Sent oldest first, one at a time; when Tern cannot
 * be reached the rest waits, and is tried again after a backoff, after every reconnect and at the
 * next start of the agent.
 */
import type { ResultParams } from "../../lib/contracts.ts";
import { Backoff } from "./backoff.ts";
import type { Ledger } from "./ledger.ts";
import type { Logger } from "./log.ts";
import { TernError, type Reply } from "./rest.ts";

export interface OutboxOptions {
	ledger: Ledger;
	/** Sends one result; rejects with a definitive TernError when Tern refuses it for good. */
	send(result: ResultParams): Promise<Reply>;
	logger: Logger;
	/** Longest wait between retries, ms. */
	maxRetryMs: number;
	/** While true, no retry is scheduled (the agent is shutting down and flushes once itself). */
	holding(): boolean;
	/** Called for each result Tern took. */
	sent(): void;
}

export class ResultOutbox {
	private readonly options: OutboxOptions;
	private readonly log: Logger;
	private readonly backoff: Backoff;
	private flushing: Promise<void> | null = null;
	private flushAgain = false;
	private retryTimer: NodeJS.Timeout | null = null;

	constructor(options: OutboxOptions) {
		this.options = options;
		this.log = options.logger;
		this.backoff = new Backoff({ initialMs: 1000, maxMs: Math.max(1000, options.maxRetryMs), jitter: 0.3 });
	}

	/** Held results go now (in the background); a failure schedules a retry. */
	kick(): void {
		this.flush().catch(err => {
			this.log.error(`Sending held results failed: ${(err as Error)?.stack ?? String(err)}`);
			this.retryLater();
		});
	}

	/** Sends held results, oldest first, one at a time; what cannot go now is retried later. */
	flush(): Promise<void> {
		if (this.flushing) {
			this.flushAgain = true;
			return this.flushing;
		}
		this.flushing = this.drain().finally(() => (this.flushing = null));
		return this.flushing;
	}

	/** No retry is pending after this. */
	close(): void {
		if (this.retryTimer) clearTimeout(this.retryTimer);
		this.retryTimer = null;
	}

	private async drain(): Promise<void> {
		const { ledger } = this.options;
		do {
			this.flushAgain = false;
			for (const entry of ledger.outbox()) {
				try {
					const reply = await this.options.send(entry.result!);
					this.options.sent();
					this.backoff.reset();
					ledger.put({ ...entry, state: "sent", note: reply?.duplicate ? "Tern had it already" : undefined });
					this.log.debug(`Result of ${entry.taskId}#${entry.attempt} taken by Tern (${String(reply?.status ?? "ok")})`);
				} catch (err) {
					if (err instanceof TernError && err.definitive) {
						this.log.warn(
							`Tern refused the result of ${entry.taskId}#${entry.attempt}: ${err.message} (${err.type})`
						);
						ledger.put({ ...entry, state: "refused", note: `${err.type}: ${err.message}` });
						continue;
					}
					this.log.info(
						`Result of ${entry.taskId}#${entry.attempt} held (${(err as Error).message}): sent again later`
					);
					this.retryLater();
					return;
				}
			}
		} while (this.flushAgain);
	}

	private retryLater(): void {
		if (this.retryTimer || this.options.holding()) return;
		this.retryTimer = setTimeout(() => {
			this.retryTimer = null;
			this.kick();
		}, this.backoff.next());
		this.retryTimer.unref();
	}
}
