/**
 * A count per (taskId, attempt): how many replies about that attempt are being handled right now.
 * Counted, not flagged, since an ack and the result behind it may overlap.
 */
export class AttemptSet {
	private readonly counts = new Map<string, number>();

	has(taskId: string, attempt: number): boolean {
		return this.counts.has(`${taskId}#${attempt}`);
	}

	/** Runs `work` with the attempt marked, and unmarks it however `work` ends. */
	async during<T>(taskId: string, attempt: number, work: () => Promise<T>): Promise<T> {
		const key = `${taskId}#${attempt}`;
		this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
		try {
			return await work();
		} finally {
			const left = this.counts.get(key)! - 1;
			if (left === 0) this.counts.delete(key);
			else this.counts.set(key, left);
		}
	}
}
