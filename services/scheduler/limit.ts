/** Bounding work in flight: a burst of thousands of fires queues here, not in the database pool. */

/** At most `limit` holders at once; the rest wait in turn. */
export class Slots {
	private readonly limit: number;
	private active = 0;
	private readonly waiting: (() => void)[] = [];

	constructor(limit: number) {
		this.limit = Math.max(limit, 1);
	}

	async run<T>(work: () => Promise<T>): Promise<T> {
		if (this.active < this.limit) this.active++;
		else await new Promise<void>(resolve => this.waiting.push(resolve));
		try {
			return await work();
		} finally {
			const next = this.waiting.shift();
			if (next) next();
			else this.active--;
		}
	}
}

/**
 * Runs `work` on every item, at most `limit` at a time. Every item is tried; the first failure
 * is thrown once all are done.
 */
export async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
	let next = 0;
	const errors: unknown[] = [];
	const lane = async () => {
		while (next < items.length) await work(items[next++]).catch(err => errors.push(err));
	};
	await Promise.all(Array.from({ length: Math.min(Math.max(limit, 1), items.length) }, lane));
	if (errors.length > 0) throw errors[0];
}
