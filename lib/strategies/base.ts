import type { Labels } from "../contracts.ts";

/** A terminal that could take a task: online, enabled, matching the selector. */
export interface Candidate {
	terminalId: string;
	labels: Labels;
	concurrency: number;
	/** Tasks it holds now (DELIVERED + PROCESSING). */
	inflight: number;
}

export interface PickRequest {
	/** Identifies the selector, for strategies that keep per-selector state. */
	selectorKey: string;
	/** The routing key of `consistent_hash`. */
	key?: string;
}

/**
 * Chooses one terminal among candidates. Implementations see every matching terminal, busy or
 * not: `consistent_hash` must pick the same terminal whatever the load, the others skip full ones.
 */
export abstract class Strategy {
	abstract readonly name: string;

	/** Returns the chosen terminal id, or null when none can take the task now. */
	abstract pick(candidates: Candidate[], request: PickRequest): string | null;

	protected free(candidates: Candidate[]): Candidate[] {
		return candidates.filter(c => c.inflight < c.concurrency);
	}
}
