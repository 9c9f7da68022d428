/**
 * A label whose values come from callers (task types): the first `limit` distinct values are
 * kept as they are, every later one is "other", so that no caller can grow a series without end.
 */
export class BoundedLabel {
	private readonly seen = new Set<string>();
	private readonly limit: number;

	constructor(limit = 50) {
		this.limit = limit;
	}

	value(raw: string): string {
		if (this.seen.has(raw)) return raw;
		if (this.seen.size >= this.limit) return "other";
		this.seen.add(raw);
		return raw;
	}
}
