/**
 * The per-turn batcher: items added during one turn of the event loop are handed over together,
 * once, at the end of that turn. Every batching mechanism in Tern is this one class, tuned by
 * its options: the dispatcher's status events (`minIntervalMs` when busy), its pushes, the
 * group commit (`serial`: a batch waits for the one before it) and the gateway's replies.
 */

export interface BatcherOptions<T> {
	/** Takes one batch. With `serial`, the next batch starts only once this one's promise settles. */
	flush(items: T[]): void | Promise<void>;
	/**
	 * A batch is handed over at once when it reaches this size, and a serial flush takes at most
	 * this many at a time.
	 * @defaultValue Infinity
	 */
	maxItems?: number;
	/**
	 * Busy: once a batch went out, the next waits until this long after it, so that many small
	 * changes go out as few messages. Quiet: a batch still goes at the end of its turn.
	 * @defaultValue 0
	 */
	minIntervalMs?: number;
	/**
	 * One flush at a time, in order: what arrives meanwhile waits and goes next, together.
	 * @defaultValue false
	 */
	serial?: boolean;
	/** Called with what a flush threw (a serial flush carries on with the next batch). */
	onError?(err: unknown): void;
}

export class TurnBatcher<T> {
	private readonly options: BatcherOptions<T>;
	private readonly maxItems: number;
	private items: T[] = [];
	private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
	private lastFlushAt = -Infinity;
	private flushing: Promise<void> | null = null;

	constructor(options: BatcherOptions<T>) {
		this.options = options;
		this.maxItems = options.maxItems ?? Infinity;
	}

	/** Items waiting for their batch. */
	get size(): number {
		return this.items.length;
	}

	/** True while items wait or a flush runs. */
	get busy(): boolean {
		return this.items.length > 0 || this.flushing !== null;
	}

	add(item: T): void {
		this.items.push(item);
		if (this.items.length >= this.maxItems && !this.options.serial) return this.flushNow();
		this.schedule();
	}

	/** Hands over what waits now (a serial batcher still waits for the flush under way). */
	flushNow(): void {
		this.cancelTimer();
		if (this.options.serial) {
			if (!this.flushing) this.flushing = this.runSerial();
			return;
		}
		if (this.items.length === 0) return;
		const batch = this.items;
		this.items = [];
		this.lastFlushAt = performance.now();
		try {
			const done = this.options.flush(batch);
			if (done) done.catch(err => this.options.onError?.(err));
		} catch (err) {
			this.options.onError?.(err);
		}
	}

	/** Resolves once every item added so far has been handed over and its flush settled. */
	async drained(): Promise<void> {
		while (this.busy) {
			if (this.flushing) await this.flushing;
			else this.flushNow();
		}
	}

	private schedule(): void {
		if (this.timer || (this.options.serial && this.flushing)) return;
		const wait = this.lastFlushAt + (this.options.minIntervalMs ?? 0) - performance.now();
		this.timer = wait <= 0 ? setImmediate(() => this.flushNow()) : setTimeout(() => this.flushNow(), wait);
	}

	private cancelTimer(): void {
		if (!this.timer) return;
		clearTimeout(this.timer as NodeJS.Timeout);
		clearImmediate(this.timer as NodeJS.Immediate);
		this.timer = null;
	}

	private async runSerial(): Promise<void> {
		try {
			while (this.items.length > 0) {
				const batch = this.items.length <= this.maxItems ? this.items : this.items.slice(0, this.maxItems);
				this.items = this.items.length <= this.maxItems ? [] : this.items.slice(this.maxItems);
				this.lastFlushAt = performance.now();
				try {
					await this.options.flush(batch);
				} catch (err) {
					this.options.onError?.(err);
				}
			}
		} finally {
			this.flushing = null;
		}
	}
}
