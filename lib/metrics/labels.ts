/**
 * Label objects built once per distinct value and reused: a metric call on the hot path then
 * allocates nothing of its own.
 */
export class LabelCache<K, L extends Record<string, string | number>> {
	private readonly cache = new Map<K, L>();
	private readonly make: (key: K) => L;

	constructor(make: (key: K) => L) {
		this.make = make;
	}

	get(key: K): L {
		let labels = this.cache.get(key);
		if (!labels) this.cache.set(key, (labels = this.make(key)));
		return labels;
	}
}
