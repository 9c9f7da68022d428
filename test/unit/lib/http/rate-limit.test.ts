import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter, retryAfterSeconds } from "../../../../lib/http/rate-limit.ts";
import { CorsPolicy, parseOrigins } from "../../../../lib/http/cors.ts";
import { contentSecurityPolicy, staticCacheHeaders } from "../../../../lib/http/headers.ts";
import { principalKey } from "../../../../lib/http/guard.ts";
import { MessageMeter } from "../../../../services/gateway/limits.ts";
import type { ServerResponse } from "node:http";

describe("RateLimiter", () => {
	it("lets `limit` hits per window and key through, then says how long until the window ends", () => {
		let now = 0;
		const limiter = new RateLimiter({ limit: 2, windowMs: 1000, now: () => now });
		assert.deepEqual(limiter.hit("a"), { ok: true, remaining: 1 });
		assert.deepEqual(limiter.hit("a"), { ok: true, remaining: 0 });
		now = 250;
		assert.deepEqual(limiter.hit("a"), { ok: false, retryAfterMs: 750 });
		assert.equal(retryAfterSeconds({ retryAfterMs: 750 }), 1);
		assert.equal(limiter.hit("b").ok, true, "each key on its own");
		now = 1000;
		assert.equal(limiter.hit("a").ok, true, "a new window");
		limiter.limit = 0;
		for (let i = 0; i < 10; i++) assert.equal(limiter.hit("a").ok, true, "0 lifts the limit");
	});

	it("keeps at most maxKeys keys", () => {
		const limiter = new RateLimiter({ limit: 1, maxKeys: 100 });
		for (let i = 0; i < 1000; i++) limiter.hit(`k${i}`);
		assert.equal(limiter.size, 100);
	});
});

describe("MessageMeter", () => {
	it("refuses past the limit in a second, and calls twice the limit abuse", () => {
		const meter = new MessageMeter();
		for (let i = 0; i < 3; i++) assert.deepEqual(meter.take(3, 10), { ok: true });
		const refused = meter.take(3, 500);
		assert.equal(refused.ok, false);
		assert.equal(!refused.ok && refused.abuse, false);
		meter.take(3, 600);
		const third = meter.take(3, 700);
		assert.equal(!third.ok && third.abuse, true);
		assert.deepEqual(meter.take(3, 1010), { ok: true }, "the next second");
		assert.deepEqual(new MessageMeter().take(0, 0), { ok: true }, "0: no limit");
	});
});

describe("CORS and headers", () => {
	it("parses exact origins and refuses anything else", () => {
		assert.deepEqual(parseOrigins(" https://a.example , http://b.example:8080"), [
			"https://a.example",
			"http://b.example:8080"
		]);
		assert.deepEqual(parseOrigins(undefined), []);
		for (const bad of ["https://a.example/", "a.example", "https://a.example/path", "*", "ftp://a.example"])
			assert.throws(() => parseOrigins(bad), /TERN_CORS_ORIGINS/, bad);
		const policy = new CorsPolicy(["https://a.example"]);
		assert.equal(policy.allows("https://a.example"), true);
		assert.equal(policy.allows("https://a.example.evil"), false);
		assert.equal(new CorsPolicy([]).open, false);
	});

	it("repeats only a clean Host in the CSP, wss under TLS", () => {
		assert.match(contentSecurityPolicy("tern.example.com", true), /connect-src 'self' wss:\/\/tern\.example\.com;/);
		assert.match(contentSecurityPolicy("[::1]:3000", false), /connect-src 'self' ws:\/\/\[::1\]:3000;/);
		assert.match(contentSecurityPolicy("evil; script-src *", false), /connect-src 'self';/);
		assert.match(contentSecurityPolicy(undefined, false), /connect-src 'self';/);
	});

	it("caches hashed build assets for a year, everything else revalidated", () => {
		const headers: Record<string, string> = {};
		const res = { setHeader: (k: string, v: string) => (headers[k] = v) } as unknown as ServerResponse;
		staticCacheHeaders(res, "/app/public/assets/index-B3x9Qz1k.js");
		assert.equal(headers["Cache-Control"], "public, max-age=31536000, immutable");
		staticCacheHeaders(res, "/app/public/index.html");
		assert.equal(headers["Cache-Control"], "no-cache");
	});

	it("gives each API token, user and terminal its own share of the token limit", () => {
		assert.equal(principalKey({ kind: "terminal", terminalId: "t1" }), "terminal:t1");
		assert.equal(principalKey({ kind: "user", userId: 3, username: "u", role: "viewer" }), "user:3");
		assert.equal(
			principalKey({
				kind: "user",
				userId: 3,
				username: "u",
				role: "viewer",
				apiToken: { id: "k1", name: "ci", scope: "read" }
			}),
			"token:k1"
		);
	});
});
