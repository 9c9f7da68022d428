/**
 * Appends to this node's chain, one batch at a time: each batch links to the head the one before
 * it left, so writes are serialized per chain. The head is read from the table when the writer
 * starts (a node restarting with the same nodeID continues its chain) and again after a refused
 * insert (another process wrote the same chain: a misconfiguration the unique (chain, seq) index
 * turns into a retry rather than a fork).
 */
import type { AuditEntry } from "../../lib/contracts.ts";
import { KeyedLock } from "../../lib/keyed-lock.ts";
import { isDuplicate } from "../../lib/sql/statements.ts";
import { EMPTY_HEAD, link, type ChainHead } from "./chain.ts";
import type { AuditStore } from "./store.ts";

const ATTEMPTS = 4;

export class ChainWriter {
	private readonly lock = new KeyedLock();
	private current: ChainHead | null = null;

	private readonly store: AuditStore;
	readonly chain: string;

	constructor(store: AuditStore, chain: string) {
		this.store = store;
		this.chain = chain;
	}

	/** The last row this writer wrote or read (null before the first write). */
	get head(): ChainHead | null {
		return this.current;
	}

	/** Appends `entries` in order; resolves once they are committed. */
	append(entries: AuditEntry[]): Promise<number> {
		return this.lock.run(this.chain, () => this.write(entries));
	}

	private async write(entries: AuditEntry[]): Promise<number> {
		if (entries.length === 0) return 0;
		for (let attempt = 1; ; attempt++) {
			this.current ??= (await this.store.head(this.chain)) ?? EMPTY_HEAD;
			const { rows, head } = link(this.chain, this.current, entries);
			try {
				await this.store.append(rows);
				this.current = head;
				return rows.length;
			} catch (err) {
				this.current = null;
				if (!isDuplicate(err) || attempt >= ATTEMPTS) throw err;
			}
		}
	}
}
