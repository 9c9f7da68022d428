/**
 * Lists that can outgrow one message (a gateway's sessions, the cache's presence: tens of
 * thousands of terminals pass NATS's 1 MiB payload limit) are read a page at a time.
 */
import type { CallingOptions, ServiceBroker } from "moleculer";

/** Rows per page: about 300 bytes each as JSON, well under 1 MiB a page. */
export const PAGE = 2000;

/** Every row of an action that takes `{ offset, limit }`, page after page. */
export async function readAll<T>(broker: ServiceBroker, action: string, options: CallingOptions = {}, page = PAGE): Promise<T[]> {
	const rows: T[] = [];
	for (let offset = 0; ; offset += page) {
		const got = await broker.call<T[], { offset: number; limit: number }>(action, { offset, limit: page }, options);
		rows.push(...got);
		if (got.length < page) return rows;
	}
}
