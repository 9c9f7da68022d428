import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdmissionGate } from "../../../../services/gateway/gate.ts";
import { PartitionGuard } from "../../../../services/gateway/partition.ts";
import { TransportWatch } from "../../../../lib/transport-watch.ts";

/** Timers the test fires by hand. */
function harness(randoms: number[]) {
	const timers = new Map<number, { fn: () => void; ms: number }>();
	let next = 0;
	const released: { reason: string; delays: number[] }[] = [];
	const gate = new AdmissionGate({ admitConcurrency: 0, admitRate: 0 }, { random: () => 0 });
	const guard = new PartitionGuard(
		{ partitionGrace: 5000, reconnectSpread: 4000 },
		{
			gate,
			releaseAll: (reason, delayFor) => released.push({ reason, delays: [delayFor(), delayFor(), delayFor()] }),
			log: () => undefined,
			setTimer: (fn, ms) => (timers.set(++next, { fn, ms }), next),
			clearTimer: id => timers.delete(id as number),
			random: () => randoms.shift() ?? 0
		}
	);
	const fire = () => {
		const [[id, timer]] = timers;
		timers.delete(id);
		timer.fn();
	};
	return { gate, guard, timers, released, fire };
}

const refused = (gate: AdmissionGate) => assert.throws(() => gate.enter(), { type: "GATEWAY_BUSY" });

describe("a gateway cut off from the cluster", () => {
	it("refuses handshakes at once, keeps sessions for the grace, then tells each to reconnect within the spread", () => {
		const { gate, guard, timers, released, fire } = harness([0, 0.5, 0.999]);
		guard.down("nats gone");
		refused(gate);
		assert.equal(released.length, 0, "sessions kept during the grace");
		assert.deepEqual(
			[...timers.values()].map(t => t.ms),
			[5000]
		);
		guard.down("again");
		assert.equal(timers.size, 1, "one grace, however often it is told");
		fire();
		assert.deepEqual(released, [{ reason: "partition", delays: [0, 2000, 3996] }]);
		refused(gate);
	});

	it("comes back before the grace ends: nobody is let go, and handshakes are taken again", () => {
		const { gate, guard, timers, released } = harness([]);
		guard.down("nats gone");
		guard.up();
		assert.equal(timers.size, 0);
		assert.equal(released.length, 0);
		gate.enter()();
	});

	it("follows the NATS client's statuses: disconnect is down, reconnect is up, once each", async () => {
		const watch = new TransportWatch();
		const seen: string[] = [];
		watch.subscribe({ down: reason => seen.push(`down ${reason}`), up: () => seen.push("up") });
		async function* statuses() {
			yield { type: "pingTimer", data: 1 };
			yield { type: "disconnect", data: "127.0.0.1:4222" };
			yield { type: "reconnecting" };
			yield { type: "disconnect", data: "127.0.0.1:4222" };
			yield { type: "reconnect", data: "127.0.0.1:4222" };
			yield { type: "reconnect", data: "127.0.0.1:4222" };
		}
		await watch.follow(statuses());
		assert.deepEqual(seen, ["down transporter disconnected (127.0.0.1:4222)", "up"]);
		assert.equal(watch.isDown, false);
	});
});
