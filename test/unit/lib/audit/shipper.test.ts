import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AuditShipper } from "../../../../lib/audit/shipper.ts";
import type { AuditEntry } from "../../../../lib/contracts.ts";

const entry = (i: number): AuditEntry => ({
	at: i,
	actor: "a",
	actorType: "user",
	action: "x.y",
	object: null,
	address: null,
	userAgent: null,
	outcome: "ok",
	changes: null
});

function logger() {
	const lines: string[] = [];
	return { lines, warn: (...a: unknown[]) => lines.push(a.join(" ")), info: (...a: unknown[]) => lines.push(a.join(" ")) };
}

/** A send that fails while `down` and resolves each call as it comes. */
function receiver() {
	const batches: AuditEntry[][] = [];
	const state = { down: false, calls: 0, waiting: [] as (() => void)[] };
	return {
		batches,
		state,
		send(entries: AuditEntry[]) {
			state.calls++;
			state.waiting.splice(0).forEach(f => f());
			// What Moleculer answers for a service no node offers: a retryable 404.
			if (state.down)
				return Promise.reject(
					Object.assign(new Error("Service 'audit.record' is not found"), { code: 404, retryable: true })
				);
			batches.push(entries);
			return Promise.resolve();
		},
		/** Resolves at the next send. */
		next: () => new Promise<void>(resolve => state.waiting.push(resolve))
	};
}

describe("the audit shipper", () => {
	it("sends the entries of one turn as one call, and builds them only then", async () => {
		const r = receiver();
		let built = 0;
		const shipper = new AuditShipper<number>({ send: r.send, build: i => (built++, entry(i)), logger: logger() });
		for (let i = 0; i < 5; i++) shipper.add(i);
		assert.equal(built, 0, "nothing is built on the caller's turn");
		await shipper.close(1000);
		assert.deepEqual(
			r.batches.map(b => b.map(e => e.at)),
			[[0, 1, 2, 3, 4]]
		);
	});

	it("retries with backoff while the audit service is away, keeping order, and says so once", async () => {
		const r = receiver();
		r.state.down = true;
		const log = logger();
		const shipper = new AuditShipper<number>({ send: r.send, build: entry, logger: log, retryMinMs: 5 });
		shipper.add(1);
		await r.next();
		await r.next();
		shipper.add(2);
		await r.next();
		assert.equal(r.batches.length, 0);
		r.state.down = false;
		while (r.batches.flat().length < 2) await r.next();
		await shipper.close(2000);
		assert.deepEqual(
			r.batches.flat().map(e => e.at),
			[1, 2]
		);
		assert.equal(log.lines.filter(l => l.includes("unreachable")).length, 1, log.lines.join("\n"));
		assert.ok(log.lines.some(l => l.includes("reachable again")));
		assert.equal(shipper.counts.dropped, 0);
	});

	it("drops an entry the audit service refuses (4xx), not the batch around it, and does not retry it", async () => {
		const log = logger();
		const written: number[] = [];
		const shipper = new AuditShipper<number>({
			send: entries => {
				if (entries.some(e => e.at === 13))
					return Promise.reject(Object.assign(new Error("Parameters validation error!"), { code: 422 }));
				written.push(...entries.map(e => e.at));
				return Promise.resolve();
			},
			build: entry,
			logger: log
		});
		for (let i = 10; i < 17; i++) shipper.add(i);
		await shipper.close(1000);
		assert.deepEqual(written, [10, 11, 12, 14, 15, 16]);
		assert.equal(shipper.counts.dropped, 1);
		assert.ok(
			log.lines.some(l => l.includes("refused an entry")),
			log.lines.join("\n")
		);
	});

	it("does not hold a node's stop up while the audit service is away", async () => {
		const r = receiver();
		r.state.down = true;
		const shipper = new AuditShipper<number>({ send: r.send, build: entry, logger: logger(), retryMinMs: 60_000 });
		shipper.add(1);
		await r.next();
		await new Promise(resolve => setImmediate(resolve));
		const started = performance.now();
		await shipper.close(30_000);
		assert.ok(performance.now() - started < 1000);
		assert.equal(shipper.counts.dropped, 1);
	});

	it("keeps at most maxQueued entries while away, drops the rest and logs how many", async () => {
		const r = receiver();
		r.state.down = true;
		const log = logger();
		const shipper = new AuditShipper<number>({ send: r.send, build: entry, logger: log, maxQueued: 3, retryMinMs: 1000 });
		shipper.add(0);
		await r.next();
		for (let i = 1; i <= 10; i++) shipper.add(i);
		assert.equal(shipper.queued, 3);
		await shipper.close(20);
		assert.equal(shipper.counts.dropped, 11, "7 past the bound, then the 4 unsent at stop");
		assert.ok(
			log.lines.some(l => l.includes("11 entries were dropped")),
			log.lines.join("\n")
		);
		shipper.add(99);
		assert.equal(shipper.counts.dropped, 12, "nothing is taken once closed");
	});
});
