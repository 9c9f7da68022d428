/**
 * Counts of what happened, per second, over the last hour: the rates of the status page and
 * the rate rules read them. Fed by the broadcasts every monitor replica receives (`task.statuses`,
 * `job.fire`), so each replica holds the cluster's picture; a replica that starts begins empty.
 */

/** Seconds kept: the longest window a rule or the status page asks about. */
export const WINDOW_SECONDS = 3600;

export class EventWindow<K extends string> {
	private readonly counts = new Map<K, Float64Array>();
	/** The second each slot of the ring holds (a slot from an older lap counts as zero). */
	private readonly stamps = new Float64Array(WINDOW_SECONDS).fill(-1);

	/** `n` occurrences of `kind` at `at` (epoch ms). */
	add(kind: K, at: number, n = 1): void {
		const second = Math.floor(at / 1000);
		const slot = second % WINDOW_SECONDS;
		if (this.stamps[slot] !== second) {
			for (const ring of this.counts.values()) ring[slot] = 0;
			this.stamps[slot] = second;
		}
		let ring = this.counts.get(kind);
		if (!ring) {
			ring = new Float64Array(WINDOW_SECONDS);
			this.counts.set(kind, ring);
		}
		ring[slot] += n;
	}

	/** Occurrences of `kind` within the last `seconds` (at most an hour) before `now`. */
	sum(kind: K, seconds: number, now: number): number {
		const ring = this.counts.get(kind);
		if (!ring) return 0;
		const last = Math.floor(now / 1000);
		const span = Math.min(Math.max(1, Math.ceil(seconds)), WINDOW_SECONDS);
		let total = 0;
		for (let second = last - span + 1; second <= last; second++) {
			const slot = ((second % WINDOW_SECONDS) + WINDOW_SECONDS) % WINDOW_SECONDS;
			if (this.stamps[slot] === second) total += ring[slot];
		}
		return total;
	}
}

/** Samples of a value over time (online terminals, each tick), kept for an hour. */
export class SampleHistory {
	private readonly samples: { at: number; value: number }[] = [];

	add(at: number, value: number): void {
		this.samples.push({ at, value });
		const oldest = at - WINDOW_SECONDS * 1000;
		let drop = 0;
		while (drop < this.samples.length && this.samples[drop].at < oldest) drop++;
		if (drop > 0) this.samples.splice(0, drop);
	}

	/** The highest sample within the last `seconds` before `now`, or null when none. */
	max(seconds: number, now: number): number | null {
		const since = now - seconds * 1000;
		let best: number | null = null;
		for (let i = this.samples.length - 1; i >= 0 && this.samples[i].at >= since; i--)
			if (best === null || this.samples[i].value > best) best = this.samples[i].value;
		return best;
	}
}
