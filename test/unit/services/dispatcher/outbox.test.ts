import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Logger } from "moleculer";
import { Outbox, STALE_PUSH_MS, type DispatcherPorts } from "../../../../services/dispatcher/outbox.ts";
import type { Presence } from "../../../../lib/contracts.ts";

const presence = { terminalId: "t1", nodeID: "gw-1", sessionId: "s1" } as Presence;

function outbox(clock: { now: number }) {
	const calls: { action: string; params: { pushes: unknown[] } }[] = [];
	const warnings: string[] = [];
	const ports = {
		nodeID: "d1",
		call: async (action: string, params: { pushes: unknown[] }) => {
			calls.push({ action, params });
			return params.pushes.map(() => true);
		},
		broadcast: () => undefined
	} as unknown as DispatcherPorts;
	const logger = { warn: (text: string) => warnings.push(text), debug: () => undefined } as unknown as Logger;
	return { box: new Outbox(ports, logger, () => clock.now), calls, warnings };
}

describe("the outbox's pushes", () => {
	it("sends a push decided just now", async () => {
		const clock = { now: 0 };
		const { box, calls } = outbox(clock);
		assert.equal(await box.push(presence, { event: "task", data: { taskId: "a" } } as never), true);
		assert.equal(calls.length, 1);
	});

	it("drops a push left unsent past the lease of a push (the process was frozen), without sending it", async () => {
		const clock = { now: 0 };
		const { box, calls, warnings } = outbox(clock);
		const pending = box.push(presence, { event: "task", data: { taskId: "a" } } as never);
		clock.now = STALE_PUSH_MS + 1;
		assert.equal(await pending, true, "the task stays as the database has it, not returned to the queue");
		assert.equal(calls.length, 0, "nothing reaches the gateway");
		assert.match(warnings.join("\n"), /Dropped 1 push/);
	});
});
