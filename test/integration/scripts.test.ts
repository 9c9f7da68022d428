/**
 * Versioned scripts: what the agent's script runner fetches. Versions only ever grow; a
 * terminal may read them; bad input changes nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TestTern } from "../helpers/tern.ts";

describe("scripts", () => {
	let tern: TestTern;
	let terminalToken: string;

	before(async () => {
		tern = await TestTern.start();
		terminalToken = await tern.registerTerminal("script-reader");
	});
	after(() => tern.close());

	it("adds a version per upload and serves the latest and each version, to users and terminals", async () => {
		const v1 = await tern.api("POST", "/api/scripts", { name: "greet", interpreter: "sh", body: "echo one" });
		assert.equal(v1.status, 201);
		assert.deepEqual(
			[v1.body.name, v1.body.version, v1.body.sha256],
			["greet", 1, createHash("sha256").update("echo one").digest("hex")]
		);
		const v2 = await tern.api("POST", "/api/scripts", { name: "greet", interpreter: "bash", body: "echo two" });
		assert.equal(v2.body.version, 2);

		const latest = await tern.api("GET", "/api/scripts/greet", undefined, terminalToken);
		assert.equal(latest.status, 200);
		assert.deepEqual([latest.body.version, latest.body.interpreter, latest.body.body], [2, "bash", "echo two"]);
		const first = await tern.api("GET", "/api/scripts/greet/versions/1", undefined, terminalToken);
		assert.deepEqual([first.body.version, first.body.body], [1, "echo one"]);
		const list = await tern.api("GET", "/api/scripts");
		assert.deepEqual(
			list.body.map((s: { name: string; version: number }) => [s.name, s.version]),
			[["greet", 2]]
		);
		assert.equal(list.body[0].body, undefined, "the list carries no bodies");
	});

	it("refuses unknown names and versions, bad input, and uploads by terminals or viewers", async () => {
		const missing = await tern.api("GET", "/api/scripts/nope");
		assert.equal(missing.status, 404);
		assert.equal(missing.body.type, "SCRIPT_NOT_FOUND");
		const noVersion = await tern.api("GET", "/api/scripts/greet/versions/9");
		assert.equal(noVersion.body.type, "SCRIPT_NOT_FOUND");
		assert.match(noVersion.body.message, /no version 9/);

		const bad = await tern.api("POST", "/api/scripts", { name: "x y", interpreter: "perl", body: "" });
		assert.equal(bad.status, 422);
		assert.match(bad.body.message, /name/);
		assert.match(bad.body.message, /interpreter/);
		const byTerminal = await tern.api(
			"POST",
			"/api/scripts",
			{ name: "evil", interpreter: "sh", body: "true" },
			terminalToken
		);
		assert.equal(byTerminal.status, 403);
		assert.equal((await tern.api("GET", "/api/scripts/evil")).status, 404, "nothing was stored");
	});

	it("gives concurrent uploads of one name distinct, consecutive versions", async () => {
		const replies = await Promise.all(
			Array.from({ length: 6 }, (_, i) =>
				tern.api("POST", "/api/scripts", { name: "race", interpreter: "sh", body: `echo ${i}` })
			)
		);
		assert.deepEqual(
			replies.map(r => r.status),
			Array(6).fill(201)
		);
		assert.deepEqual(
			replies.map(r => r.body.version).sort((a: number, b: number) => a - b),
			[1, 2, 3, 4, 5, 6]
		);
	});
});
