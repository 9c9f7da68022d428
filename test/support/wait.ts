/**
 * How tests wait, never by sleeping: `until` ends on events (whatever a socket or emitter
 * delivers), and is the wait wherever an event exists; `waitFor` polls a condition that has no
 * event (a row in a database, a process's health port, a count over the REST API).
 */

/** Polls a condition until it holds; fails with what was awaited. */
export async function waitFor(
	condition: () => boolean | Promise<boolean>,
	timeoutMs = 5000,
	what: () => string = () => "condition"
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what()}`);
		await new Promise(resolve => setTimeout(resolve, 10));
	}
}

/** Anything with on/off listeners: a socket.io socket, a ws WebSocket, an EventEmitter. */
export interface Listenable {
	on(event: string, listener: (...args: any[]) => void): unknown;
	off(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * Resolves once `condition` holds, checked now and after each of `events` on any of `emitters`
 * (a listener added after those that record what came, so it sees their result); fails after
 * `timeoutMs` with what was awaited.
 */
export function until(
	emitters: Listenable | Listenable[],
	events: string[],
	condition: () => boolean,
	timeoutMs = 5000,
	what: () => string = () => "condition"
): Promise<void> {
	const sources = Array.isArray(emitters) ? emitters : [emitters];
	return new Promise((resolve, reject) => {
		const stop = () => {
			clearTimeout(timer);
			for (const emitter of sources) for (const event of events) emitter.off(event, check);
		};
		const check = () => {
			if (!condition()) return;
			stop();
			resolve();
		};
		const timer = setTimeout(() => {
			stop();
			reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what()}`));
		}, timeoutMs);
		for (const emitter of sources) for (const event of events) emitter.on(event, check);
		check();
	});
}
