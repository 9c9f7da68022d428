/**
 * services/terminals/views.ts with fixed dates: a terminal that only polls is online over pull
 * while it polls within the window (defect 7), a live session wins, disabled wins over both.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { hasLabel, toRecord, toView, transportName } from "../../../../services/terminals/views.ts";
import type { Presence } from "../../../../lib/contracts.ts";
import type { TerminalRow } from "../../../../models/terminal.model.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const WINDOW = 60_000;
const COUNTS = { running: 2, queued: 3 };

const row: TerminalRow = {
	id: "p",
	name: null,
	labels: '{"zone":"a"}',
	concurrency: 4,
	enabled: true,
	keyVersion: 1,
	lastActiveAt: NOW - 600_000,
	draining: false,
	pulledAt: NOW - 59_000,
	createdAt: NOW - 3_600_000,
	updatedAt: NOW - 3_600_000
};

const session: Presence = {
	terminalId: "p",
	nodeID: "node-1",
	sessionId: "s1",
	concurrency: 8,
	labels: { zone: "a" },
	capabilities: ["shell"],
	connectedAt: NOW - 10_000,
	lastActiveAt: NOW - 1000,
	transport: "socket.io"
};

describe("terminal views", () => {
	it("show a terminal that polls within the window as online over pull (defect 7)", () => {
		const polling = toView(row, undefined, COUNTS, NOW, WINDOW);
		assert.equal(polling.status, "online");
		assert.equal(polling.transport, "pull");
		assert.equal(polling.lastActiveAt, new Date(NOW - 59_000).toISOString(), "the pull, not the stale lastActiveAt");
		assert.equal(polling.connectedAt, null);
		assert.deepEqual([polling.running, polling.queued], [2, 3]);
	});

	it("show it offline once it stops polling, with when it was last seen", () => {
		const stopped = toView({ ...row, pulledAt: NOW - WINDOW }, undefined, COUNTS, NOW, WINDOW);
		assert.equal(stopped.status, "offline");
		assert.equal(stopped.transport, null);
		assert.equal(stopped.lastActiveAt, new Date(NOW - WINDOW).toISOString());
		const never = toView({ ...row, pulledAt: null, lastActiveAt: null }, undefined, COUNTS, NOW, WINDOW);
		assert.equal(never.status, "offline");
		assert.equal(never.lastActiveAt, null);
	});

	it("prefer a live session: its transport, capabilities, concurrency and activity", () => {
		const live = toView({ ...row, pulledAt: null }, session, COUNTS, NOW, WINDOW);
		assert.equal(live.status, "online");
		assert.equal(live.transport, "socketio");
		assert.deepEqual(live.capabilities, ["shell"]);
		assert.equal(live.concurrency, 8);
		assert.equal(live.nodeID, "node-1");
		assert.equal(live.lastActiveAt, new Date(NOW - 1000).toISOString());
	});

	it("show disabled whatever the presence, and draining beside the status", () => {
		assert.equal(toView({ ...row, enabled: false }, session, COUNTS, NOW, WINDOW).status, "disabled");
		const draining = toView({ ...row, draining: true }, session, COUNTS, NOW, WINDOW);
		assert.equal(draining.status, "online");
		assert.equal(draining.draining, true);
		assert.equal(toRecord({ ...row, draining: true }).draining, true);
		assert.equal(toRecord({ ...row, enabled: 0 as unknown as boolean }).enabled, false, "SQLite's 0/1");
	});

	it("name transports the same way whichever spelling the gateway used", () => {
		assert.equal(transportName("socket.io"), "socketio");
		assert.equal(transportName("socketio"), "socketio");
		assert.equal(transportName("websocket"), "ws");
		assert.equal(transportName("ws"), "ws");
		assert.equal(transportName("pull"), "pull");
		assert.equal(transportName(undefined), null);
		assert.equal(transportName("carrier-pigeon"), null);
	});

	it("filter labels by key or key=value", () => {
		assert.ok(hasLabel({ zone: "a" }, "zone"));
		assert.ok(hasLabel({ zone: "a" }, "zone=a"));
		assert.ok(!hasLabel({ zone: "a" }, "zone=b"));
		assert.ok(hasLabel({ url: "a=b" }, "url=a=b"), "only the first '=' splits");
		assert.ok(!hasLabel({}, "zone"));
	});
});
