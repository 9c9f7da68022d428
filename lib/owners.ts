/**
 * Who owns a key among a set of nodes (rendezvous hashing, lib/strategies), remembered until the
 * set changes: hashing every key against every node on each call (SHA-1 per node) showed in the
 * profiles of the dispatcher, the gateway and the api alike.
 */
import { rendezvousOwner } from "./strategies/index.ts";

export class OwnerCache {
	private members = "";
	private readonly owners = new Map<string, string | null>();
	private readonly max: number;

	constructor(max = 200_000) {
		this.max = max;
	}

	/** The owner of `key` among `ids` (sorted or not); null for an empty list. */
	owner(key: string, ids: readonly string[]): string | null {
		if (ids.length <= 1) return ids[0] ?? null;
		const members = [...ids].sort().join();
		if (members !== this.members) {
			this.members = members;
			this.owners.clear();
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
