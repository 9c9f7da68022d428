/**
 * The hash chain of the audit log, pure. Each row's hash covers its own fields and the hash of
 * the row before it in its chain, so that editing a row changes its hash, and removing or
 * reordering rows breaks the link (`prevHash`) or the numbering (`seq`) of the row after.
 */
import { createHash } from "node:crypto";
import type { AuditEntry } from "../../lib/contracts.ts";
import type { AuditLogRow } from "../../models/audit.model.ts";

/** The `prevHash` of a chain's first row. */
export const GENESIS = "0".repeat(64);

/** JSON with object keys in sorted order at every depth: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
	if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
	if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
	const entries = Object.entries(value as Record<string, unknown>)
		.filter(([, v]) => v !== undefined)
		.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
	return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** A row without its id (the database gives it) and its hash (computed here). */
export type UnhashedRow = Omit<AuditLogRow, "id" | "hash">;

/** The fields a hash covers: all but id and hash; numbers as numbers whatever the driver gave. */
function hashedFields(row: UnhashedRow): Record<string, unknown> {
	return {
		chain: row.chain,
		seq: Number(row.seq),
		at: Number(row.at),
		actor: row.actor,
		actorType: row.actorType,
		action: row.action,
		object: row.object ?? null,
		address: row.address ?? null,
		userAgent: row.userAgent ?? null,
		outcome: row.outcome,
		changes: row.changes ?? null
	};
}

export function hashOf(row: UnhashedRow): string {
	return createHash("sha256")
		.update(row.prevHash + canonicalJson(hashedFields(row)))
		.digest("hex");
}

/** Where a chain ends: its last row's seq and hash (0 and GENESIS for an empty chain). */
export interface ChainHead {
	seq: number;
	hash: string;
}

export const EMPTY_HEAD: ChainHead = { seq: 0, hash: GENESIS };

/** The rows that append `entries` to a chain ending at `head`, in order, with the new head. */
export function link(
	chain: string,
	head: ChainHead,
	entries: AuditEntry[]
): { rows: Omit<AuditLogRow, "id">[]; head: ChainHead } {
	const rows: Omit<AuditLogRow, "id">[] = [];
	let { seq, hash } = head;
	for (const entry of entries) {
		const unhashed: UnhashedRow = {
			chain,
			seq: ++seq,
			at: entry.at,
			actor: entry.actor,
			actorType: entry.actorType,
			action: entry.action,
			object: entry.object,
			address: entry.address,
			userAgent: entry.userAgent,
			outcome: entry.outcome,
			changes: entry.changes === null ? null : canonicalJson(entry.changes),
			prevHash: hash
		};
		hash = hashOf(unhashed);
		rows.push({ ...unhashed, hash });
	}
	return { rows, head: { seq, hash } };
}

/** What is wrong with a row, if anything. */
export interface Break {
	id: number;
	reason: string;
}

/**
 * Checks one chain's rows, fed in seq order (a page at a time): the first row that does not
 * follow from the one before, or from its own content.
 */
export class ChainCheck {
	private head: ChainHead = EMPTY_HEAD;
	readonly chain: string;
	checked = 0;

	constructor(chain: string) {
		this.chain = chain;
	}

	/** The first break among `rows`, or null when they all follow. */
	feed(rows: AuditLogRow[]): Break | null {
		for (const row of rows) {
			const seq = Number(row.seq);
			if (seq !== this.head.seq + 1)
				return {
					id: row.id,
					reason:
						seq > this.head.seq + 1
							? `chain '${this.chain}': row seq ${seq} follows seq ${this.head.seq} (${seq - this.head.seq - 1} missing)`
							: `chain '${this.chain}': row seq ${seq} out of order after seq ${this.head.seq}`
				};
			if (row.prevHash !== this.head.hash)
				return { id: row.id, reason: `chain '${this.chain}': seq ${seq} does not link to the row before it` };
			if (hashOf(row) !== row.hash)
				return { id: row.id, reason: `chain '${this.chain}': seq ${seq} was changed after it was written` };
			this.head = { seq, hash: row.hash };
			this.checked++;
		}
		return null;
	}
}
