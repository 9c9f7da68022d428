import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../../moleculer.config.ts";

describe("configuration", () => {
	const base = { TERN_DATA_DIR: "/nonexistent/tern", JWT_SECRET: "s" };

	it("TERN_RATE_LIMIT: 2000 requests/s by default, 0 turns the limit off", () => {
		assert.equal(loadConfig(base).rateLimit, 2000);
		assert.equal(loadConfig({ ...base, TERN_RATE_LIMIT: "" }).rateLimit, 2000);
		assert.equal(loadConfig({ ...base, TERN_RATE_LIMIT: "0" }).rateLimit, 0);
		assert.equal(loadConfig({ ...base, TERN_RATE_LIMIT: "50" }).rateLimit, 50);
	});

	it("refuses a TERN_RATE_LIMIT that is not a whole number of requests", () => {
		for (const value of ["-1", "1.5", "many"])
			assert.throws(() => loadConfig({ ...base, TERN_RATE_LIMIT: value }), /TERN_RATE_LIMIT/);
	});
});
