import { Strategy, type Candidate } from "./base.ts";

/** The free terminal with the lowest load (held tasks / concurrency); ties go to the fewest held. */
export class LeastBusyStrategy extends Strategy {
	readonly name = "least_busy";

	pick(candidates: Candidate[]): string | null {
		let best: Candidate | null = null;
		for (const c of this.free(candidates)) {
			if (
				!best ||
				c.inflight / c.concurrency < best.inflight / best.concurrency ||
				(c.inflight / c.concurrency === best.inflight / best.concurrency && c.inflight < best.inflight)
			)
				best = c;
		}
		return best?.terminalId ?? null;
	}
}
