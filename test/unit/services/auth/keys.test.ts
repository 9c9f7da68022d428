import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeProtectedHeader } from "jose";
import { KeyRing, kidOf } from "../../../../services/auth/keys.ts";
import { lockMs } from "../../../../services/auth/lockout.ts";
import { cappedRole } from "../../../../services/auth/api-tokens.ts";
import { durationSeconds } from "../../../../lib/duration.ts";

const OLD = "an-old-secret-of-at-least-32-bytes-long";
const NEW = "a-new-secret-of-at-least-32-bytes-long!";

describe("the key ring", () => {
	it("signs with the current key and names it; verifies tokens of every key it holds", async () => {
		const before = new KeyRing(OLD);
		const after = new KeyRing(NEW, [OLD]);
		const old = await before.sign({ kind: "user" }, "admin", 60);
		const fresh = await after.sign({ kind: "user" }, "admin", 60);
		assert.equal(decodeProtectedHeader(fresh.token).kid, kidOf(NEW));
		assert.equal((await after.verify(old.token)).jti, old.jti);
		assert.equal((await after.verify(fresh.token)).sub, "admin");
		await assert.rejects(before.verify(fresh.token), /signing key .* is unknown/);
		assert.deepEqual(after.kids, [kidOf(NEW), kidOf(OLD)]);
	});

	it("derives a kid that differs per secret and does not contain it", () => {
		assert.notEqual(kidOf(OLD), kidOf(NEW));
		assert.equal(kidOf(OLD), kidOf(OLD));
		assert.ok(!OLD.includes(kidOf(OLD)));
	});

	it("refuses an expired token as expired", async () => {
		const ring = new KeyRing(NEW);
		const { token } = await ring.sign({}, "x", 60, Date.now() - 120_000);
		await assert.rejects(ring.verify(token), /expired/);
	});
});

describe("the lockout's schedule", () => {
	const policy = { threshold: 5, baseMs: 1000, maxMs: 900_000, windowMs: 3_600_000 };
	it("locks nothing below the threshold, then 1 s doubling per failure up to the maximum", () => {
		assert.deepEqual(
			[1, 4, 5, 6, 7, 14, 15, 100, 10_000].map(n => lockMs(n, policy)),
			[0, 0, 1000, 2000, 4000, 512_000, 900_000, 900_000, 900_000]
		);
	});
});

describe("API token scopes", () => {
	it("cap the user's role: read → viewer, submit → at most operator, admin → the user's own", () => {
		assert.equal(cappedRole("admin", "read"), "viewer");
		assert.equal(cappedRole("admin", "submit"), "operator");
		assert.equal(cappedRole("viewer", "submit"), "viewer");
		assert.equal(cappedRole("operator", "admin"), "operator");
		assert.equal(cappedRole("admin", "admin"), "admin");
	});
});

describe("durations", () => {
	it("reads seconds and s/m/h/d, refuses the rest naming the setting", () => {
		assert.deepEqual(
			["90", "90s", "15m", "12h", "365d", 42].map(v => durationSeconds(v, "x")),
			[90, 90, 900, 43_200, 31_536_000, 42]
		);
		for (const bad of ["", "0", "-5", "1.5h", "1w", 0, 1.5]) assert.throws(() => durationSeconds(bad, "TTL"), /TTL/);
	});
});
