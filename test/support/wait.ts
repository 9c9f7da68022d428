/**
 * The one wait that polls: for a condition with no event to wait on (a row in a database, a
 * process's health port, a count over a REST API). Where an event exists, wait on the event.
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
