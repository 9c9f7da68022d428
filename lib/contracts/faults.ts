/** Faults (design §9): degraded mode when the database is away, and the consistency check. */

/** One dispatcher's storage: in degraded mode or not, and what its journal did. */
export interface StorageState {
	degraded: boolean;
	/** Why degraded mode started (the database's error), null when not degraded. */
	reason: string | null;
	/** When degraded mode started, ISO-8601. */
	since: string | null;
	/** Changes journalled since degraded mode started (the last outage's, once it is over). */
	journalled: number;
	/** The last replay of the journal into the database. */
	lastReplay: {
		at: string;
		tookMs: number;
		records: number;
		applied: number;
		skipped: number;
		conflicts: number;
		discardedBytes: number;
	} | null;
}

/** `dispatcher.storage` on one node, as `/api/system/status` lists it. */
export interface NodeStorage extends StorageState {
	nodeID: string;
}

/** One check of the consistency check: what it looked for, how many it found and how many it put right. */
export interface ReconcileCheck {
	name: "delivered-offline" | "delivered-overdue" | "processing-overdue" | "presence-dead-node" | "fire-without-task";
	description: string;
	found: number;
	repaired: number;
	/** Up to ten ids of what was found (tasks, terminals or fires). */
	samples: string[];
}

/** `POST /api/system/reconcile`: the consistency check's report. */
export interface ReconcileReport {
	startedAt: string;
	tookMs: number;
	found: number;
	repaired: number;
	checks: ReconcileCheck[];
	/** Replicas whose part did not answer (`dispatcher@node-2`): what they own was not checked. */
	unanswered: string[];
}
