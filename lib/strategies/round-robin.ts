import { Strategy, type Candidate, type PickRequest } from "./base.ts";

/** Takes turns among the free terminals of each selector, in terminal-id order. */
export class RoundRobinStrategy extends Strategy {
	readonly name = "round_robin";
	private readonly cursors = new Map<string, number>();

	pick(candidates: Candidate[], request: PickRequest): string | null {
		const ordered = [...candidates].sort((a, b) => a.terminalId.localeCompare(b.terminalId));
		if (ordered.length === 0) return null;
		const start = this.cursors.get(request.selectorKey) ?? 0;
		for (let i = 0; i < ordered.length; i++) {
			const index = (start + i) % ordered.length;
			const candidate = ordered[index];
			if (candidate.inflight < candidate.concurrency) {
				this.cursors.set(request.selectorKey, index + 1);
				return candidate.terminalId;
			}
		}
		return null;
	}
}
