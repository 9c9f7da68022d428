/**
 * Which replica owns a key (a terminal id, a task id): rendezvous hashing over the live replicas
 * (lib/strategies), so only the keys of a replica that leaves move. This module is the one
 * answer to "which dispatcher replica owns terminal X": the dispatcher's own ownership, the
 * `TerminalOwner` call strategy and the gateway's reply routing all ask it.
 *
 * Owners are remembered until the set of replicas changes: hashing every key against every
 * replica on each call (SHA-1 per replica) showed in the profiles of the dispatcher, the gateway
 * and the api alike.
 */
import { rendezvousOwner } from "./strategies/index.ts";

export class OwnerCache {
	private members = "";
	/** The list last given: callers that keep one list (Ownership) skip the sort on every key. A list given here is never changed in place. */
	private lastIds: readonly string[] | null = null;
	private readonly owners = new Map<string, string | null>();
	private readonly max: number;

	constructor(max = 200_000) {
		this.max = max;
	}

	/** The owner of `key` among `ids` (sorted or not); null for an empty list. */
	owner(key: string, ids: readonly string[]): string | null {
		if (ids.length <= 1) return ids[0] ?? null;
		if (ids !== this.lastIds) {
			this.lastIds = ids;
			const members = [...ids].sort().join();
			if (members !== this.members) {
				this.members = members;
				this.owners.clear();
			}
		}
		let owner = this.owners.get(key);
		if (owner === undefined) {
			if (this.owners.size >= this.max) this.owners.clear();
			owner = rendezvousOwner(key, ids);
			this.owners.set(key, owner);
		}
		return owner;
	}
}

/** The replicas that left, and the membership they left, until recovery has dealt with them. */
export interface Departure {
	owners: string[];
	nodeIDs: string[];
}

/**
 * One replica's view of the membership: who owns what, and who left since recovery last looked.
 * While views differ for a moment two replicas may both act on a key; every state change is a
 * compare-and-set, so one of them wins.
 */
export class Ownership {
	readonly self: string;
	private replicas: string[];
	private departure: Departure | null = null;
	private readonly cache = new OwnerCache();

	constructor(self: string) {
		this.self = self;
		this.replicas = [self];
	}

	/** The live replicas (this one is always among them); true when the membership changed. */
	set(nodeIDs: readonly string[]): boolean {
		const live = new Set(nodeIDs);
		live.add(this.self);
		const next = [...live].sort();
		if (next.join() === this.replicas.join()) return false;
		const gone = this.replicas.filter(id => !live.has(id));
		if (gone.length > 0)
			this.departure = {
				owners: this.departure?.owners ?? this.replicas,
				nodeIDs: [...new Set([...(this.departure?.nodeIDs ?? []), ...gone])]
			};
		this.replicas = next;
		return true;
	}

	ownerOf(key: string): string {
		return this.cache.owner(key, this.replicas) ?? this.self;
	}

	owns(key: string): boolean {
		return this.ownerOf(key) === this.self;
	}

	/** Replicas that left since last asked, and the membership they left. */
	takeDeparture(): Departure | undefined {
		const departure = this.departure ?? undefined;
		this.departure = null;
		return departure;
	}
}
