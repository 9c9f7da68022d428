import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorTypes } from "../../../../lib/errors.ts";
import { upgradeTarget } from "../../../../services/gateway/websocket.ts";

describe("gateway upgrades: where a WebSocket goes", () => {
	it("finds the channel and the decoded id", () => {
		assert.deepEqual(upgradeTarget("/ws/terminal/a%20b?token=x"), { channel: "terminal", id: "a b" });
		assert.deepEqual(upgradeTarget("/ws/client/task-1/"), { channel: "client", id: "task-1" });
		assert.deepEqual(upgradeTarget("/socket.io/?EIO=4&transport=websocket"), { channel: "socket.io" });
	});

	it("refuses, never throws, on what is not an endpoint or not valid percent-encoding", () => {
		for (const url of ["/ws/client/%ZZ", "/ws/terminal/%E0%A4%A", "/ws/terminal/%", "/ws/nowhere", undefined]) {
			const target = upgradeTarget(url);
			assert.equal(target.channel, null, String(url));
			if (target.channel === null) assert.equal((target.error as { type?: string }).type, ErrorTypes.BAD_REQUEST);
		}
	});
});
