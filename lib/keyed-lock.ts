/**
 * Runs async work one at a time per key, in call order. The dispatcher holds a terminal's lock
 * while it decides what to hand that terminal, so two submits cannot both see a free slot.
 */
export class KeyedLock {
	private readonly tails = new Map<string, Promise<unknown>>();

	run<T>(key: string, work: () => Promise<T>): Promise<T> {
		const previous = this.tails.get(key) ?? Promise.resolve();
		const result = previous.then(work, work);
		const tail = result.catch(() => undefined);
		this.tails.set(key, tail);
		void tail.then(() => {
			if (this.tails.get(key) === tail) this.tails.delete(key);
		});
		return result;
	}

	get size(): number {
		return this.tails.size;
	}
}
