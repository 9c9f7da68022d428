/**
 * The access check (lib/access/middleware.ts), the number rules (lib/rules.ts), the NUL and
 * prototype-key scans (lib/bounded.ts) and label matching (lib/labels.ts), without a broker.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import FastestValidator from "fastest-validator";
import { enforce, enforceAction, isExternal } from "../../../lib/access/middleware.ts";
import { ACCESS } from "../../../lib/contracts/access.ts";
import type { Principal } from "../../../lib/contracts.ts";
import { queryBoolRule, queryIntRule } from "../../../lib/rules.ts";
import { nulField, prototypeKey } from "../../../lib/bounded.ts";
import { hasLabel, labelsMatch } from "../../../lib/labels.ts";

const user = (role: "viewer" | "operator" | "admin", scope?: "read" | "submit" | "admin"): Principal => ({
	kind: "user",
	userId: 1,
	username: "u",
	role,
	...(scope ? { apiToken: { id: "t", name: "t", scope } } : {})
});
const terminal: Principal = { kind: "terminal", terminalId: "t-1" };

const forbidden = (fn: () => void, message: RegExp) =>
	assert.throws(fn, (err: { type?: string; code?: number; message: string }) => {
		assert.equal(err.type, "FORBIDDEN");
		assert.equal(err.code, 403);
		assert.match(err.message, message);
		return true;
	});

describe("access", () => {
	it("lets a role meet its level and higher, and names the role needed otherwise", () => {
		enforce(ACCESS["dispatcher.submit"]!, user("operator"));
		enforce(ACCESS["dispatcher.submit"]!, user("admin"));
		forbidden(
			() => enforce(ACCESS["dispatcher.submit"]!, user("viewer")),
			/'operator' role or higher; the caller is a 'viewer'/
		);
		forbidden(() => enforce(ACCESS["dispatcher.purge"]!, user("operator")), /'admin' role/);
	});

	it("keeps terminals to terminal actions and users off them", () => {
		enforce(ACCESS["dispatcher.ack"]!, terminal);
		enforce(ACCESS["dispatcher.get"]!, terminal);
		forbidden(() => enforce(ACCESS["dispatcher.list"]!, terminal), /not terminals/);
		forbidden(() => enforce(ACCESS["dispatcher.ack"]!, user("admin")), /for terminals/);
	});

	it("holds an API token to its scope as well as its user's role", () => {
		enforce(ACCESS["dispatcher.list"]!, user("admin", "read"));
		forbidden(() => enforce(ACCESS["dispatcher.submit"]!, user("admin", "read")), /scope 'submit' or wider/);
		enforce(ACCESS["dispatcher.submit"]!, user("operator", "admin"));
		forbidden(() => enforce(ACCESS["dispatcher.purge"]!, user("operator", "admin")), /'admin' role/);
	});

	it("trusts internal calls and leaves actions outside the table alone", () => {
		enforceAction("dispatcher.purge", undefined);
		enforceAction("dispatcher.statuses", user("viewer"));
		enforceAction("constructor", user("viewer"));
		assert.equal(isExternal({ caller: null, meta: {} }), false);
		assert.equal(isExternal({ caller: "api", meta: { principal: terminal } }), true);
		assert.equal(isExternal({ caller: null, meta: { principal: terminal } }), true);
		assert.equal(isExternal({ caller: "terminals", meta: { principal: user("operator") } }), false);
	});
});

/** fastest-validator's class, as Node loads the CommonJS module (its types describe another shape). */
const Validator = FastestValidator as unknown as new (options: object) => {
	compile(schema: object): (params: object) => true | { field: string }[];
};

describe("query number rules", () => {
	const v = new Validator({ useNewCustomCheckerFunction: true });
	const check = v.compile({ page: queryIntRule({ min: 1, max: 500, optional: true }), on: queryBoolRule(), $$strict: true });

	it("takes plain decimals and JSON numbers, converting the strings", () => {
		const params: Record<string, unknown> = { page: "25", on: "true" };
		assert.equal(check(params), true);
		assert.deepEqual(params, { page: 25, on: true });
		assert.equal(check({ page: 7 }), true);
	});

	it("refuses booleans, arrays, exponents, hex, fractions and out-of-bounds values, naming the field", () => {
		for (const page of [true, [], [1], "1e3", "0x10", "1.5", " 5", "0", "501", 1e308, "99999999999999999"]) {
			const result = check({ page });
			assert.ok(Array.isArray(result), `${JSON.stringify(page)} is refused`);
			assert.equal(result[0]!.field, "page");
		}
		assert.ok(Array.isArray(check({ on: 1 })));
	});
});

describe("NUL characters and prototype keys", () => {
	it("finds a NUL in a key or a string, naming its path, except inside payload and output", () => {
		assert.equal(nulField({ a: "x\u0000" }), "a");
		assert.equal(nulField({ a: [{ b: "ok" }, { c: "\u0000" }] }), "a[1].c");
		assert.equal(nulField({ "k\u0000": 1 }), "k\\u0000");
		assert.equal(nulField({ payload: { text: "\u0000" }, output: ["\u0000"] }), null);
		assert.equal(nulField("\u0000"), "");
		assert.equal(nulField({ a: "fine" }), null);
	});

	it("refuses toString and valueOf as keys outside payload and output", () => {
		assert.equal(prototypeKey({ attempt: { toString: 1 } }), "attempt.toString");
		assert.equal(prototypeKey({ valueOf: 1 }), "valueOf");
		assert.equal(prototypeKey({ payload: { toString: "x", constructor: 1 } }), null);
		assert.equal(prototypeKey({ payload: { __proto__: null } }), null);
	});
});

describe("labels", () => {
	const labels = { zone: "a" };

	it("matches own labels only, never Object.prototype's", () => {
		for (const key of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
			assert.equal(hasLabel(labels, key), false, key);
			assert.equal(labelsMatch([key], labels), false, key);
			assert.equal(labelsMatch({ [key]: String(({} as Record<string, unknown>)[key]) }, labels), false, key);
		}
		assert.equal(hasLabel(labels, "zone"), true);
		assert.equal(hasLabel(labels, "zone=a"), true);
		assert.equal(hasLabel(labels, "zone=b"), false);
		assert.equal(labelsMatch(["zone"], labels), true);
	});
});
