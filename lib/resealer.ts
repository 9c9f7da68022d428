/**
 * The background re-sealing: after the active data key changes, values sealed with an older key
 * are opened and sealed again with the active one, a small page at a time, so that the older key
 * can be dropped from the configuration. Each write is a compare-and-set on the old sealed text:
 * replicas doing the same work at once, or a row changed meanwhile, lose nothing. A page is
 * followed by a turn of the event loop, so the hot path never waits behind it.
 */
import type { Logger } from "moleculer";
import { MissingKeyError, type Keyring } from "./keyring.ts";

/** One sealed value of a table, with the cursor that names its row. */
export interface SealedRow {
	cursor: string;
	value: string;
}

/** A table (column) that holds sealed values. */
export interface ResealTarget {
	/** `tasks.secrets`, `scripts.body`: what the log lines name. */
	readonly name: string;
	/** Up to `limit` rows after `after` (null: from the start), in cursor order, not sealed with `activeId`. */
	page(after: string | null, limit: number, activeId: string): Promise<SealedRow[]>;
	/** The stored value moved to the active key (throws MissingKeyError when its key is gone). */
	reseal(value: string): string;
	/** Writes `to` where the row still holds `from`; false when it changed meanwhile. */
	write(cursor: string, from: string, to: string): Promise<boolean>;
}

export interface ResealReport {
	/** Values moved to the active key, per target. */
	moved: Record<string, number>;
	/** Values whose key is not configured, per key id. */
	missing: Record<string, number>;
}

export class Resealer {
	private readonly keyring: Keyring;
	private readonly targets: () => ResealTarget[];
	private readonly logger: Logger;
	private readonly pageSize: number;
	private timer: NodeJS.Timeout | undefined;
	private running: Promise<ResealReport> | null = null;
	private stopping = false;

	constructor(keyring: Keyring, targets: () => ResealTarget[], logger: Logger, pageSize = 100) {
		this.keyring = keyring;
		this.targets = targets;
		this.logger = logger;
		this.pageSize = pageSize;
	}

	/** A pass now, then one every `intervalMs`. */
	start(intervalMs: number): void {
		void this.run();
		this.timer = setInterval(() => void this.run(), intervalMs);
		this.timer.unref();
	}

	/** Stops the timer and waits for a pass under way. */
	async stop(): Promise<void> {
		this.stopping = true;
		clearInterval(this.timer);
		await this.running?.catch(() => undefined);
	}

	/** One pass over every target (a pass already under way is shared). */
	run(): Promise<ResealReport> {
		this.running ??= this.pass().finally(() => (this.running = null));
		return this.running;
	}

	private async pass(): Promise<ResealReport> {
		const report: ResealReport = { moved: {}, missing: {} };
		for (const target of this.targets()) {
			try {
				await this.passOver(target, report);
			} catch (err) {
				if (!this.stopping) this.logger.warn(`Re-sealing ${target.name} stopped: ${(err as Error).message}`);
			}
		}
		for (const [kid, n] of Object.entries(report.missing))
			this.logger.error(
				`${n} sealed value(s) use data key '${kid}', which is not configured: they cannot be opened. ` +
					`Add '${kid}:<its key>' back to TERN_DATA_KEYS, after the active key '${this.keyring.activeId}'.`
			);
		return report;
	}

	private async passOver(target: ResealTarget, report: ResealReport): Promise<void> {
		const active = this.keyring.activeId;
		let after: string | null = null;
		let moved = 0;
		while (!this.stopping) {
			const rows = await target.page(after, this.pageSize, active);
			if (rows.length === 0) break;
			for (const row of rows) {
				try {
					if (await target.write(row.cursor, row.value, target.reseal(row.value))) moved++;
				} catch (err) {
					if (!(err instanceof MissingKeyError)) throw err;
					report.missing[err.kid] = (report.missing[err.kid] ?? 0) + 1;
				}
			}
			after = rows[rows.length - 1].cursor;
			if (moved > 0) this.logger.info(`Re-sealing ${target.name}: ${moved} value(s) moved to data key '${active}' so far`);
			await new Promise(resolve => setImmediate(resolve));
		}
		if (moved > 0) this.logger.info(`Re-sealing ${target.name}: done, ${moved} value(s) moved to data key '${active}'`);
		report.moved[target.name] = moved;
	}
}

/** `%…%` LIKE pattern text with `!` escaping LIKE's wildcards (use with `ESCAPE '!'`). */
export function likeEscape(text: string): string {
	return text.replace(/[!%_]/g, c => `!${c}`);
}
