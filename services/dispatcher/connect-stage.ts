/**
 * Connects, staged. When many terminals come back at once (a gateway restarted, a partition
 * healed), each new session's queue is handed out a few terminals at a time rather than all at
 * once, so that neither the database nor the gateways are flooded, and in a fair order: the
 * terminal whose queue holds the most urgent task goes first (no priority inversion behind a
 * crowd of idle terminals), terminals of equal urgency in the order they connected (none
 * starves). A turn hands a terminal at most its free slots, so none takes the others' share;
 * the rest of its queue follows as it reports results.
 */
import type { Presence } from "../../lib/contracts.ts";

export interface StageOptions {
	/** Terminals whose turn runs at once. */
	concurrency: number;
	/** Terminals whose urgency is read in one query at most. @defaultValue 1000 */
	batch?: number;
}

export interface StagePorts {
	/** One terminal's turn: the deliveries of its older sessions return, and its queue drains. */
	turn(presence: Presence): Promise<void>;
	/** The highest priority waiting for each terminal (absent: nothing pinned to it). */
	urgency(terminalIds: string[]): Promise<Map<string, number>>;
}

interface Waiting {
	presence: Presence;
	/** Order of arrival, the tie-break. */
	seq: number;
	/** Highest priority it waits with; null until read. */
	urgency: number | null;
	done: { resolve(): void; reject(err: unknown): void };
}

/** Nothing pinned: after every terminal that has something. */
const IDLE = Number.NEGATIVE_INFINITY;

/** Before `b`: more urgent, or as urgent and earlier. */
function before(a: Waiting, b: Waiting): boolean {
	return a.urgency! > b.urgency! || (a.urgency === b.urgency && a.seq < b.seq);
}

export class ConnectStage {
	private readonly ports: StagePorts;
	private readonly options: Required<StageOptions>;
	/** Arrived, urgency not read yet. */
	private unread: Waiting[] = [];
	/** Urgency read: a binary heap, most urgent at the top. */
	private readonly heap: Waiting[] = [];
	private running = 0;
	private reading = false;
	private seq = 0;

	constructor(ports: StagePorts, options: StageOptions) {
		this.ports = ports;
		this.options = { batch: 1000, ...options };
	}

	/** Terminals waiting for their turn. */
	get waiting(): number {
		return this.unread.length + this.heap.length;
	}

	/** Terminals whose turn runs now. */
	get active(): number {
		return this.running;
	}

	/** Resolves when the terminal's turn has run; a newer session of it waits for a turn of its own. */
	enter(presence: Presence): Promise<void> {
		return new Promise<void>((resolve, reject) => {
			this.unread.push({ presence, seq: this.seq++, urgency: null, done: { resolve, reject } });
			this.pump();
		});
	}

	private pump(): void {
		// Read as they come (those of one turn of the event loop together), so that the next turn
		// goes to the most urgent terminal known.
		if (this.unread.length > 0 && !this.reading) {
			this.reading = true;
			setImmediate(() => void this.read());
		}
		while (this.running < this.options.concurrency && this.heap.length > 0) this.start(this.pop());
	}

	/** Reads the urgency of the waiting terminals not yet read, in one query per batch. */
	private async read(): Promise<void> {
		const batch = this.unread.splice(0, this.options.batch);
		let urgency: Map<string, number>;
		try {
			urgency = await this.ports.urgency(batch.map(w => w.presence.terminalId));
		} catch {
			// Unread, they still go, in the order they came.
			urgency = new Map();
		}
		for (const waiting of batch) {
			waiting.urgency = urgency.get(waiting.presence.terminalId) ?? IDLE;
			this.push(waiting);
		}
		this.reading = false;
		this.pump();
	}

	private start(waiting: Waiting): void {
		this.running++;
		// The slot is free before the caller hears of the turn's end.
		const end = (settle: () => void) => {
			this.running--;
			this.pump();
			settle();
		};
		this.ports.turn(waiting.presence).then(
			() => end(waiting.done.resolve),
			err => end(() => waiting.done.reject(err))
		);
	}

	private push(waiting: Waiting): void {
		const heap = this.heap;
		heap.push(waiting);
		let i = heap.length - 1;
		while (i > 0) {
			const parent = (i - 1) >> 1;
			if (!before(heap[i], heap[parent])) break;
			[heap[i], heap[parent]] = [heap[parent], heap[i]];
			i = parent;
		}
	}

	private pop(): Waiting {
		const heap = this.heap;
		const top = heap[0];
		const last = heap.pop()!;
		if (heap.length > 0) {
			heap[0] = last;
			let i = 0;
			for (;;) {
				const left = 2 * i + 1;
				const right = left + 1;
				let best = i;
				if (left < heap.length && before(heap[left], heap[best])) best = left;
				if (right < heap.length && before(heap[right], heap[best])) best = right;
				if (best === i) break;
				[heap[i], heap[best]] = [heap[best], heap[i]];
				i = best;
			}
		}
		return top;
	}
}
