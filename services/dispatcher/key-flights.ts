/**
 * The idempotency keys whose insert is under way on this replica. A second submit of a key while
 * the first one's insert is still out — a client that gave up waiting and sent it again, say, while
 * a slow database holds the first — waits for that insert and then answers with its task, instead
 * of writing a second task under the same key (which a database that wakes up later would refuse,
 * leaving the second caller with a task that does not exist).
 */
export class KeyFlights {
	private readonly flights = new Map<string, Promise<unknown>>();

	/**
	 * Takes `keys` for the insert `work`, at once (no turn passes between the look and the take),
	 * and runs it. When one of them is taken already, waits for that insert to end, however it ends,
	 * and answers `busy` without running `work`: the caller looks for the earlier task.
	 */
	async run(keys: string[], work: () => Promise<void>): Promise<"done" | "busy"> {
		const earlier = keys.flatMap(key => this.flights.get(key) ?? []);
		if (earlier.length > 0) {
			await Promise.allSettled(earlier);
			return "busy";
		}
		const flight = work();
		for (const key of keys) this.flights.set(key, flight);
		try {
			await flight;
			return "done";
		} finally {
			for (const key of keys) if (this.flights.get(key) === flight) this.flights.delete(key);
		}
	}
}
