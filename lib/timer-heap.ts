/**
 * One timer for any number of jobs: a binary min-heap of (time, key) and a single setTimeout
 * armed for the earliest entry. Entries are never removed from the middle; a key re-armed or
 * disarmed leaves its old entry behind, recognised as stale by its sequence number.
 */
interface Entry {
	at: number;
	key: string;
	seq: number;
}

export class TimerHeap {
	private readonly heap: Entry[] = [];
	private readonly current = new Map<string, number>();
	private seq = 0;
	private timer: NodeJS.Timeout | null = null;
	private timerAt = Infinity;
	private readonly onDue: (due: { key: string; at: number }[]) => void;
	private stopped = false;

	/** @param onDue called with every entry whose time has come, earliest first */
	constructor(onDue: (due: { key: string; at: number }[]) => void) {
		this.onDue = onDue;
	}

	/** Arms `key` for `at`, replacing any earlier arming of it. */
	set(key: string, at: number): void {
		const seq = ++this.seq;
		this.current.set(key, seq);
		this.push({ at, key, seq });
		if (at < this.timerAt) this.arm();
	}

	delete(key: string): void {
		this.current.delete(key);
	}

	has(key: string): boolean {
		return this.current.has(key);
	}

	get size(): number {
		return this.current.size;
	}

	/** The time `key` is armed for, if it is. */
	timeOf(key: string): number | undefined {
		const seq = this.current.get(key);
		return seq === undefined ? undefined : this.heap.find(e => e.seq === seq)?.at;
	}

	stop(): void {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
	}

	private live(entry: Entry): boolean {
		return this.current.get(entry.key) === entry.seq;
	}

	private arm(): void {
		if (this.stopped) return;
		while (this.heap.length > 0 && !this.live(this.heap[0])) this.pop();
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		this.timerAt = Infinity;
		if (this.heap.length === 0) return;
		const at = this.heap[0].at;
		this.timerAt = at;
		// setTimeout holds at most ~24.8 days; a later time re-arms on the way.
		const delay = Math.min(Math.max(at - Date.now(), 0), 2 ** 31 - 1);
		this.timer = setTimeout(() => this.fire(), delay);
	}

	private fire(): void {
		this.timer = null;
		this.timerAt = Infinity;
		const now = Date.now();
		const due: { key: string; at: number }[] = [];
		while (this.heap.length > 0 && this.heap[0].at <= now) {
			const entry = this.pop()!;
			if (!this.live(entry)) continue;
			this.current.delete(entry.key);
			due.push({ key: entry.key, at: entry.at });
		}
		if (due.length > 0) this.onDue(due);
		this.arm();
	}

	private push(entry: Entry): void {
		const heap = this.heap;
		heap.push(entry);
		let i = heap.length - 1;
		while (i > 0) {
			const parent = (i - 1) >> 1;
			if (heap[parent].at <= entry.at) break;
			heap[i] = heap[parent];
			i = parent;
		}
		heap[i] = entry;
	}

	private pop(): Entry | undefined {
		const heap = this.heap;
		const top = heap[0];
		const last = heap.pop();
		if (heap.length > 0 && last) {
			const n = heap.length;
			let i = 0;
			for (;;) {
				const left = 2 * i + 1;
				const right = left + 1;
				let smallest = i;
				let smallestAt = last.at;
				if (left < n && heap[left].at < smallestAt) {
					smallest = left;
					smallestAt = heap[left].at;
				}
				if (right < n && heap[right].at < smallestAt) smallest = right;
				if (smallest === i) break;
				heap[i] = heap[smallest];
				i = smallest;
			}
			heap[i] = last;
		}
		return top;
	}
}
