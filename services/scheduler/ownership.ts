/**
 * Which scheduler replica owns a job: rendezvous hashing over the live scheduler nodes, so that
 * when one leaves only its jobs move, each to one of the others.
 */
import { rendezvousOwner } from "../../lib/strategies/index.ts";

export class Ownership {
	private readonly nodeID: string;
	private owners: string[];

	constructor(nodeID: string) {
		this.nodeID = nodeID;
		this.owners = [nodeID];
	}

	ownerOf(jobId: string): string {
		return rendezvousOwner(jobId, this.owners) ?? this.nodeID;
	}

	owns(jobId: string): boolean {
		return this.ownerOf(jobId) === this.nodeID;
	}

	/** The live replicas (this one is always among them); false when they are the same as before. */
	update(nodeIDs: string[]): boolean {
		const owners = [...new Set([...nodeIDs, this.nodeID])].sort();
		if (owners.join() === this.owners.join()) return false;
		this.owners = owners;
		return true;
	}
}
