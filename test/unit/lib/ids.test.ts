import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { uuidv7 } from "../../../lib/ids.ts";

describe("uuidv7", () => {
	it("is a version-7, variant-1 UUID carrying the time", () => {
		const now = Date.UTC(2026, 10, 21, 12, 0, 0);
		const id = uuidv7(now + 10_000_000);
		assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		assert.equal(parseInt(id.replace(/-/g, "").slice(0, 12), 16), now + 10_000_000);
	});

	it("sorts in creation order, also within one millisecond and if the clock steps back", () => {
		const t = Date.now() + 20_000_000;
		const ids = [uuidv7(t), uuidv7(t), uuidv7(t), uuidv7(t - 5), uuidv7(t + 1)];
		for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
		const many = Array.from({ length: 10_000 }, () => uuidv7(t + 2));
		assert.deepEqual([...many].sort(), many);
		assert.equal(new Set(many).size, many.length);
	});
});
