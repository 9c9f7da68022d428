import type { AuditEntry } from "../lib/contracts.ts";

/**
 * A row of `audit_log` (migrations/0007-security.ts). Append-only: the application has no update
 * and no delete of it. Times are Unix milliseconds; `changes` is canonical JSON text (or null).
 * `hash` = sha256(prevHash + canonical JSON of the row's other fields), see services/audit/chain.ts.
 * The table is reached only through the statements of services/audit/store.ts (no ORM model:
 * nothing but INSERT and SELECT is ever needed).
 */
export interface AuditLogRow extends Omit<AuditEntry, "changes"> {
	id: number;
	/** The writing audit node (its nodeID): one chain each. */
	chain: string;
	/** 1, 2, 3… within the chain, no gaps. */
	seq: number;
	changes: string | null;
	prevHash: string;
	hash: string;
}
