/**
 * What the dispatcher knows of terminals without asking: who is connected where (a mirror of
 * the cache's presence, kept by the same broadcast events) and each terminal's record (enabled,
 * concurrency, labels), fetched once and dropped when the terminal is updated. Both were calls
 * on every drain before; a stale answer costs little — a push to a session that is gone fails
 * and the task goes back to its queue.
 */
import { call, type Caller } from "../../lib/actions.ts";
import type { Presence, TerminalRecord } from "../../lib/contracts.ts";

export class PresenceMirror {
	private readonly sessions = new Map<string, Presence>();

	/** A session came up (or the cache's view of one): the newest session of a terminal wins. */
	set(presence: Presence): void {
		const current = this.sessions.get(presence.terminalId);
		if (current && current.sessionId !== presence.sessionId && current.connectedAt > presence.connectedAt) return;
		this.sessions.set(presence.terminalId, presence);
	}

	/** A session closed; a newer session of the terminal stays. */
	remove(terminalId: string, sessionId: string): void {
		if (this.sessions.get(terminalId)?.sessionId === sessionId) this.sessions.delete(terminalId);
	}

	/** A gateway node left: its sessions are gone. */
	removeNode(nodeID: string): void {
		for (const [id, p] of this.sessions) if (p.nodeID === nodeID) this.sessions.delete(id);
	}

	load(list: Presence[]): void {
		for (const presence of list) this.set(presence);
	}

	get(terminalId: string): Presence | null {
		return this.sessions.get(terminalId) ?? null;
	}

	list(): Presence[] {
		return [...this.sessions.values()];
	}
}

export class TerminalRecords {
	private readonly caller: Caller;
	private readonly records = new Map<string, Promise<TerminalRecord | null>>();

	constructor(caller: Caller) {
		this.caller = caller;
	}

	get(id: string): Promise<TerminalRecord | null> {
		let record = this.records.get(id);
		if (!record) {
			record = call(this.caller, "terminals.resolve", { id });
			this.records.set(id, record);
			// Unknown terminals and failed lookups are asked again next time.
			record.then(
				found => found === null && this.records.get(id) === record && this.records.delete(id),
				() => this.records.get(id) === record && this.records.delete(id)
			);
		}
		return record;
	}

	invalidate(id: string): void {
		this.records.delete(id);
	}
}
