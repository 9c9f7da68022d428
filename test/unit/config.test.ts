import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brokerOptions, describeConfig, loadConfig } from "../../moleculer.config.ts";
import { TernPrometheusReporter } from "../../lib/metrics/reporter.ts";

describe("configuration", () => {
	const base = {
		TERN_DATA_DIR: "/nonexistent/tern",
		JWT_SECRET: "a-test-secret-of-at-least-32-bytes!",
		TERN_DATA_KEYS: `k1:${"A".repeat(43)}=`
	};

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

	it("refuses a JWT_SECRET shorter than 32 bytes, naming it and the fix", () => {
		assert.throws(() => loadConfig({ ...base, JWT_SECRET: "s" }), /JWT_SECRET is shorter than 32 bytes/);
		assert.throws(() => loadConfig({ ...base, JWT_SECRET: "x".repeat(31) }), /JWT_SECRET is shorter than 32 bytes/);
		assert.equal(loadConfig({ ...base, JWT_SECRET: "x".repeat(32) }).jwtSecret, "x".repeat(32));
		// Bytes, not characters: 11 three-byte characters are 33 bytes.
		assert.equal(loadConfig({ ...base, JWT_SECRET: "€".repeat(11) }).jwtSecret, "€".repeat(11));
	});

	it("refuses a placeholder JWT_SECRET (REPLACE-ME, changeme), whatever its case", () => {
		for (const secret of [
			"REPLACE-ME-jwt-secret-0123456789abcdef",
			"my-Replace-Me-secret-0123456789abcdef",
			"CHANGEME-0123456789abcdef0123456789"
		])
			assert.throws(() => loadConfig({ ...base, JWT_SECRET: secret }), /placeholder/);
	});

	it("JWT_PREVIOUS_SECRETS: a comma-separated list, each checked like JWT_SECRET", () => {
		assert.deepEqual(loadConfig(base).jwtPreviousSecrets, []);
		const a = "a".repeat(40);
		const b = "b".repeat(40);
		assert.deepEqual(loadConfig({ ...base, JWT_PREVIOUS_SECRETS: ` ${a}, ${b} ,` }).jwtPreviousSecrets, [a, b]);
		assert.throws(() => loadConfig({ ...base, JWT_PREVIOUS_SECRETS: `${a},short` }), /JWT_PREVIOUS_SECRETS entry 2/);
	});

	it("cluster mode needs JWT_SECRET; embedded mode generates a long one into the data dir and keeps it", () => {
		assert.throws(() => loadConfig({ TERN_DATA_DIR: "/nonexistent/tern", TRANSPORTER: "nats://x:4222" }), /JWT_SECRET/);
		const dir = mkdtempSync(join(tmpdir(), "tern-config-"));
		try {
			const first = loadConfig({ TERN_DATA_DIR: dir }).jwtSecret;
			assert.ok(Buffer.byteLength(first) >= 32);
			assert.equal(loadConfig({ TERN_DATA_DIR: dir }).jwtSecret, first);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("TERN_TERMINAL_TOKEN_TTL: 365 days by default, seconds or 90s/15m/12h/30d", () => {
		assert.equal(loadConfig(base).terminalTokenTtl, 365 * 86_400);
		assert.equal(loadConfig({ ...base, TERN_TERMINAL_TOKEN_TTL: "3600" }).terminalTokenTtl, 3600);
		assert.equal(loadConfig({ ...base, TERN_TERMINAL_TOKEN_TTL: "30d" }).terminalTokenTtl, 30 * 86_400);
		assert.equal(loadConfig({ ...base, TERN_TERMINAL_TOKEN_TTL: "12h" }).terminalTokenTtl, 12 * 3600);
		for (const value of ["0", "-1", "soon", "1w"])
			assert.throws(() => loadConfig({ ...base, TERN_TERMINAL_TOKEN_TTL: value }), /TERN_TERMINAL_TOKEN_TTL/);
	});

	it("shows no secret in the configuration view", () => {
		const config = loadConfig({ ...base, JWT_PREVIOUS_SECRETS: "p".repeat(40) });
		const view = JSON.stringify(describeConfig(config));
		assert.ok(!view.includes(base.JWT_SECRET));
		assert.ok(!view.includes("p".repeat(40)));
	});
});
