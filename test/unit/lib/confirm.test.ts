/**
 * lib/confirm.ts without a broker: a token confirms exactly the action, object and caller it was
 * issued for, until its expiry, and only under the key that signed it. Time is passed in.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CONFIRM_TTL_MS, actorOf, signConfirmation, verifyConfirmation, type ConfirmSubject } from "../../../lib/confirm.ts";
import { ErrorTypes } from "../../../lib/errors.ts";

const KEY = new TextEncoder().encode("a-test-key-of-some-length");
const NOW = Date.parse("2026-03-01T12:00:00Z");
const SUBJECT: ConfirmSubject = { action: "terminals.delete", object: "terminal:t1", actor: "user:1" };

function refusedAs(type: string) {
	return (err: Error & { type?: string; code?: number }) => {
		assert.equal(err.type, type);
		assert.equal(err.code, 412);
		return true;
	};
}

describe("second confirmation tokens", () => {
	it("confirm their subject until they expire, 60 s by default", () => {
		const { token, expiresAt } = signConfirmation(KEY, SUBJECT, NOW);
		assert.equal(expiresAt, NOW + CONFIRM_TTL_MS);
		assert.equal(CONFIRM_TTL_MS, 60_000);
		verifyConfirmation(KEY, token, SUBJECT, NOW);
		verifyConfirmation(KEY, token, SUBJECT, expiresAt - 1);
		assert.throws(() => verifyConfirmation(KEY, token, SUBJECT, expiresAt), refusedAs(ErrorTypes.CONFIRMATION_EXPIRED));
		assert.throws(
			() => verifyConfirmation(KEY, token, SUBJECT, expiresAt + 3_600_000),
			refusedAs(ErrorTypes.CONFIRMATION_EXPIRED)
		);
	});

	it("differ each time, so that one does not predict the next", () => {
		assert.notEqual(signConfirmation(KEY, SUBJECT, NOW).token, signConfirmation(KEY, SUBJECT, NOW).token);
	});

	it("do not confirm another action, object or caller", () => {
		const { token } = signConfirmation(KEY, SUBJECT, NOW);
		for (const other of [
			{ ...SUBJECT, action: "users.delete" },
			{ ...SUBJECT, object: "terminal:t2" },
			{ ...SUBJECT, actor: "user:2" }
		])
			assert.throws(() => verifyConfirmation(KEY, token, other, NOW), refusedAs(ErrorTypes.CONFIRMATION_INVALID));
	});

	it("are refused when signed by another key, tampered with or malformed", () => {
		const { token } = signConfirmation(KEY, SUBJECT, NOW);
		const otherKey = new TextEncoder().encode("another-key");
		assert.throws(() => verifyConfirmation(otherKey, token, SUBJECT, NOW), refusedAs(ErrorTypes.CONFIRMATION_INVALID));

		const [body, signature] = token.split(".");
		const claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
		const later = Buffer.from(JSON.stringify({ ...claims, e: claims.e + 3_600_000 })).toString("base64url");
		assert.throws(
			() => verifyConfirmation(KEY, `${later}.${signature}`, SUBJECT, NOW),
			refusedAs(ErrorTypes.CONFIRMATION_INVALID),
			"a longer expiry under the old signature"
		);
		for (const bad of ["", "abc", `${body}.`, `${body}.${signature}.x`, `${body}.${signature.slice(2)}`, "..."])
			assert.throws(() => verifyConfirmation(KEY, bad, SUBJECT, NOW), refusedAs(ErrorTypes.CONFIRMATION_INVALID), bad);
	});

	it("name the caller by kind and id", () => {
		assert.equal(actorOf({ kind: "user", userId: 7, username: "ann", role: "admin" }), "user:7");
		assert.equal(actorOf({ kind: "terminal", terminalId: "t1" }), "terminal:t1");
		assert.equal(actorOf(undefined), "internal");
	});
});
