import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConnectStage } from "../../../../services/dispatcher/connect-stage.ts";
import type { Presence } from "../../../../lib/contracts.ts";

const presence = (terminalId: string) => ({ terminalId, nodeID: "gw-1", sessionId: `s-${terminalId}` }) as Presence;

/** Turns that end when the test says so; the stage's order and concurrency as they happened. */
function harness(tops: Record<string, number>, concurrency: number, batch?: number) {
	const started: string[] = [];
	const finish = new Map<string, () => void>();
	let running = 0;
	let most = 0;
	const queries: string[][] = [];
	const stage = new ConnectStage(
		{
			turn: p =>
				new Promise<void>(resolve => {
					started.push(p.terminalId);
					most = Math.max(most, ++running);
					finish.set(p.terminalId, () => {
						running--;
						resolve();
					});
				}),
			urgency: async ids => {
				queries.push(ids);
				return new Map(ids.filter(id => id in tops).map(id => [id, tops[id]]));
			}
		},
		{ concurrency, ...(batch ? { batch } : {}) }
	);
	/** Ends the oldest running turn and lets the stage start the next. */
	const endOne = async () => {
		const id = started.find(s => finish.has(s))!;
		const end = finish.get(id)!;
		finish.delete(id);
		end();
		await settle();
	};
	return { stage, started, endOne, queries, most: () => most };
}

/** Lets every promise callback queued so far run. */
const settle = () => new Promise<void>(resolve => setImmediate(resolve));

describe("the connect stage", () => {
	it("runs at most its concurrency of turns at once, and every terminal gets one", async () => {
		const ids = Array.from({ length: 50 }, (_, i) => `t${i}`);
		const { stage, started, endOne, most } = harness({}, 4);
		const done = ids.map(id => stage.enter(presence(id)));
		await settle();
		assert.equal(started.length, 4);
		assert.equal(stage.waiting, 46);
		while (started.length < ids.length || stage.active > 0) await endOne();
		await Promise.all(done);
		assert.equal(most(), 4);
		assert.deepEqual([...started].sort(), [...ids].sort());
		assert.equal(stage.waiting, 0);
	});

	it("takes the most urgent queue first, then arrival order, idle terminals last", async () => {
		const { stage, started, endOne } = harness({ low: 1, high: 9, mid: 5, mid2: 5 }, 1);
		const done = ["idle1", "low", "mid", "idle2", "high", "mid2"].map(id => stage.enter(presence(id)));
		await settle();
		while (started.length < 6 || stage.active > 0) await endOne();
		await Promise.all(done);
		assert.deepEqual(started, ["high", "mid", "mid2", "low", "idle1", "idle2"]);
	});

	it("reads urgency in batches, one query for many terminals", async () => {
		const ids = Array.from({ length: 25 }, (_, i) => `t${i}`);
		const { stage, started, endOne, queries } = harness({}, 2, 10);
		const done = ids.map(id => stage.enter(presence(id)));
		while (started.length < ids.length || stage.active > 0) {
			await settle();
			if (stage.active > 0) await endOne();
		}
		await Promise.all(done);
		assert.ok(queries.length <= 4, `${queries.length} queries for 25 terminals in batches of 10`);
		assert.deepEqual(queries.flat().sort(), [...ids].sort());
	});

	it("still runs turns when the urgency cannot be read, and passes a turn's failure to its caller", async () => {
		const stage = new ConnectStage(
			{
				turn: async p => {
					if (p.terminalId === "bad") throw new Error("drain failed");
				},
				urgency: async () => {
					throw new Error("database away");
				}
			},
			{ concurrency: 2 }
		);
		await stage.enter(presence("good"));
		await assert.rejects(stage.enter(presence("bad")), /drain failed/);
		await stage.enter(presence("after"));
		assert.equal(stage.active, 0);
	});
});
