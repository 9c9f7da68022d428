import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { brokerOptions, loadConfig } from "../../moleculer.config.ts";
import { TernPrometheusReporter } from "../../lib/metrics/reporter.ts";

describe("configuration", () => {
	const base = { TERN_DATA_DIR: "/nonexistent/tern", JWT_SECRET: "s", TERN_DATA_KEYS: `k1:${"A".repeat(43)}=` };

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

	it("TERN_METRICS: on by default, with Tern's Prometheus reporter; off turns metrics off", () => {
		assert.equal(loadConfig(base).metrics, true);
		const on = brokerOptions(loadConfig(base)).metrics as { enabled: boolean; reporter: unknown[] };
		assert.equal(on.enabled, true);
		assert.ok(on.reporter[0] instanceof TernPrometheusReporter);
		for (const value of ["off", "false", "0", "OFF"]) {
			const config = loadConfig({ ...base, TERN_METRICS: value });
			assert.equal(config.metrics, false);
			assert.deepEqual(brokerOptions(config).metrics, { enabled: false });
		}
		assert.throws(() => loadConfig({ ...base, TERN_METRICS: "maybe" }), /TERN_METRICS/);
	});

	it("LOG_FORMAT: text by default, json on request, nothing else", () => {
		assert.equal(loadConfig(base).logFormat, "text");
		assert.equal(loadConfig({ ...base, LOG_FORMAT: "json" }).logFormat, "json");
		assert.throws(() => loadConfig({ ...base, LOG_FORMAT: "xml" }), /LOG_FORMAT/);
	});
});
