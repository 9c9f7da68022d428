import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeConfig, loadConfig } from "../../moleculer.config.ts";

describe("configuration: transport security and limits", () => {
	const base = {
		TERN_DATA_DIR: "/nonexistent/tern",
		JWT_SECRET: "a-test-secret-of-at-least-32-bytes!",
		TERN_DATA_KEYS: `k1:${"A".repeat(43)}=`
	};

	it("TERN_TOKEN_RATE_LIMIT and TERN_SOCKET_RATE_LIMIT: 200/s by default, 0 off, whole numbers only", () => {
		const config = loadConfig(base);
		assert.equal(config.tokenRateLimit, 200);
		assert.equal(config.socketRateLimit, 200);
		assert.equal(loadConfig({ ...base, TERN_TOKEN_RATE_LIMIT: "0", TERN_SOCKET_RATE_LIMIT: "0" }).tokenRateLimit, 0);
		for (const name of ["TERN_TOKEN_RATE_LIMIT", "TERN_SOCKET_RATE_LIMIT"])
			for (const value of ["-1", "2.5", "lots"])
				assert.throws(() => loadConfig({ ...base, [name]: value }), new RegExp(name));
	});

	it("TERN_CORS_ORIGINS: none by default, exact origins otherwise", () => {
		assert.deepEqual(loadConfig(base).corsOrigins, []);
		assert.deepEqual(loadConfig({ ...base, TERN_CORS_ORIGINS: "https://a.example,http://localhost:5173" }).corsOrigins, [
			"https://a.example",
			"http://localhost:5173"
		]);
		assert.throws(() => loadConfig({ ...base, TERN_CORS_ORIGINS: "*" }), /TERN_CORS_ORIGINS/);
	});

	it("TLS: off by default; the key never shows in the described configuration", () => {
		assert.equal(loadConfig(base).tls, null);
		const dir = mkdtempSync(join(tmpdir(), "tern-tls-config-"));
		try {
			const cert = join(dir, "c.pem");
			const key = join(dir, "k.pem");
			writeFileSync(cert, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
			writeFileSync(key, "-----BEGIN PRIVATE KEY-----\nsecret-key\n-----END PRIVATE KEY-----\n");
			const config = loadConfig({ ...base, TLS_CERT: cert, TLS_KEY: key });
			assert.ok(config.tls?.key.includes("secret-key"));
			const described = JSON.stringify(describeConfig(config));
			assert.doesNotMatch(described, /secret-key|BEGIN/);
			assert.deepEqual(describeConfig(config).tls, { certFile: cert, keyFile: key });
			writeFileSync(join(dir, "not.pem"), "hello");
			assert.throws(
				() => loadConfig({ ...base, TLS_CERT: join(dir, "not.pem"), TLS_KEY: key }),
				/TLS_CERT .* is not a PEM file/
			);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
