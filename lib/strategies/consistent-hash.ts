import { createHash } from "node:crypto";
import { Strategy, type Candidate, type PickRequest } from "./base.ts";

function score(key: string, terminalId: string): bigint {
	return createHash("sha1").update(key).update("\0").update(terminalId).digest().readBigUInt64BE(0);
}

/** The id with the highest score for `key` (rendezvous hashing); null for an empty list. */
export function rendezvousOwner(key: string, ids: readonly string[]): string | null {
	if (ids.length <= 1) return ids[0] ?? null; // a single node (embedded mode) owns every key: no hashing
	let best: string | null = null;
	let bestScore = -1n;
	for (const id of ids) {
		const s = score(key, id);
		if (s > bestScore) {
			best = id;
			bestScore = s;
		}
	}
	return best;
}

/**
 * Rendezvous (highest-random-weight) hashing: the same key goes to the same terminal while
 * the set of matching terminals is unchanged, and only the keys of a terminal that leaves move.
 * A busy owner keeps its keys: the task waits rather than landing elsewhere.
 */
export class ConsistentHashStrategy extends Strategy {
	readonly name = "consistent_hash";

	owner(candidates: Candidate[], key: string): Candidate | null {
		const id = rendezvousOwner(
			key,
			candidates.map(c => c.terminalId)
		);
		return candidates.find(c => c.terminalId === id) ?? null;
	}

	pick(candidates: Candidate[], request: PickRequest): string | null {
		const owner = this.owner(candidates, request.key ?? "");
		return owner && owner.inflight < owner.concurrency ? owner.terminalId : null;
	}
}
