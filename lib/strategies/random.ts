import { Strategy, type Candidate } from "./base.ts";

/** Any free terminal, uniformly. */
export class RandomStrategy extends Strategy {
	readonly name = "random";

	private readonly random: () => number;

	constructor(random: () => number = Math.random) {
		super();
		this.random = random;
	}

	pick(candidates: Candidate[]): string | null {
		const free = this.free(candidates);
		if (free.length === 0) return null;
		return free[Math.floor(this.random() * free.length)].terminalId;
	}
}
