/**
 * Scoped API tokens (`/api/tokens`): shown once and kept as a hash, acting as their user with
 * the role their scope allows, and refused once revoked, expired, or their user disabled.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { TestTern, type ApiReply } from "../helpers/tern.ts";
import type { ApiTokenView } from "../../lib/contracts.ts";

function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, JSON.stringify(reply.body));
	if (message) assert.match(reply.body.message, message);
}

async function login(tern: TestTern, username: string, password: string): Promise<string> {
	const reply = await tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null);
	assert.equal(reply.status, 200, JSON.stringify(reply.body));
	return reply.body.token;
}

describe("API tokens", () => {
	let tern: TestTern;
	let operator: string;
	let operatorId: number;

	before(async () => {
		tern = await TestTern.start();
		const made = await tern.api("POST", "/api/users", { username: "otto", password: "operator-pass-1", role: "operator" });
		operatorId = made.body.id;
		operator = await login(tern, "otto", "operator-pass-1");
		await tern.registerTerminal("api-tok-term");
	});
	after(() => tern.close());

	const create = (body: unknown, token = tern.adminToken) => tern.api("POST", "/api/tokens", body, token);

	it("creates a token whose secret is shown once and stored only as a hash", async () => {
		const reply = await create({ name: "ci", scope: "submit", expiresInDays: 30 }, operator);
		assert.equal(reply.status, 201, JSON.stringify(reply.body));
		assert.match(reply.body.token, /^tern_/);
		assert.equal(reply.body.name, "ci");
		assert.equal(reply.body.scope, "submit");
		assert.equal(reply.body.username, "otto");
		assert.ok(Math.abs(Date.parse(reply.body.expiresAt) - (Date.now() + 30 * 86_400_000)) < 60_000);
		const listed = (await tern.api<ApiTokenView[]>("GET", "/api/tokens", undefined, operator)).body;
		assert.deepEqual(
			listed.map(t => t.name),
			["ci"]
		);
		assert.ok(!JSON.stringify(listed).includes(reply.body.token.slice(-20)), "the list shows no secret");
		const service = tern.broker.getLocalService("auth") as unknown as {
			apiTokens: { findAll(options: object): Promise<{ secretHash: string }[]> };
		};
		const rows = await service.apiTokens.findAll({ raw: true });
		const secret = (reply.body.token as string).slice(-43);
		assert.ok(rows.every(row => row.secretHash !== secret && !row.secretHash.includes(secret)));

		assertError(await create({ name: "ci", scope: "read" }, operator), 409, "TOKEN_EXISTS");
		assert.equal((await create({ name: "ci", scope: "read" })).status, 201, "another user may use the name");
	});

	it("refuses bad bodies naming the field", async () => {
		for (const [body, field] of [
			[{ scope: "read" }, "name"],
			[{ name: "x", scope: "root" }, "scope"],
			[{ name: "x", scope: "read", expiresInDays: 0 }, "expiresInDays"],
			[{ name: "x", scope: "read", expiresInDays: "7" }, "expiresInDays"],
			[{ name: "x", scope: "read", extra: 1 }, "extra"]
		] as const)
			assertError(await create(body), 422, "VALIDATION_ERROR", new RegExp(field));
	});

	it("acts as its user with the role its scope allows", async () => {
		const read = (await create({ name: "reader", scope: "read" })).body.token as string;
		const submit = (await create({ name: "submitter", scope: "submit" })).body.token as string;
		const full = (await create({ name: "full", scope: "admin" })).body.token as string;
		const task = { terminalId: "api-tok-term", type: "t" };
		assert.equal((await tern.api("GET", "/api/tasks", undefined, read)).status, 200);
		assertError(await tern.api("POST", "/api/task/submit", task, read), 403, "FORBIDDEN");
		assert.equal((await tern.api("POST", "/api/task/submit", task, submit)).status, 201);
		assertError(await tern.api("GET", "/api/users", undefined, submit), 403, "FORBIDDEN");
		assert.equal((await tern.api("GET", "/api/users", undefined, full)).status, 200);
		const listed = (await tern.api<ApiTokenView[]>("GET", "/api/tokens", undefined, full)).body;
		assert.ok(
			listed.some(t => t.name === "ci" && t.username === "otto"),
			"an admin sees everyone's"
		);
		const used = listed.find(t => t.name === "reader")!;
		assert.notEqual(used.lastUsedAt, null, "lastUsedAt is noted");
	});

	it("revokes: own or by an admin; another user's is TOKEN_NOT_FOUND", async () => {
		const mine = await create({ name: "to-revoke", scope: "read" }, operator);
		const adminOwn = await create({ name: "admins-own", scope: "read" });
		assertError(await tern.api("DELETE", `/api/tokens/${adminOwn.body.id}`, undefined, operator), 404, "TOKEN_NOT_FOUND");
		assertError(await tern.api("DELETE", "/api/tokens/no-such", undefined, operator), 404, "TOKEN_NOT_FOUND");
		assert.equal((await tern.api("GET", "/api/tasks", undefined, adminOwn.body.token)).status, 200);

		const revoked = await tern.api("DELETE", `/api/tokens/${mine.body.id}`, undefined, operator);
		assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
		assert.notEqual(revoked.body.revokedAt, null);
		assertError(await tern.api("GET", "/api/tasks", undefined, mine.body.token), 401, "INVALID_TOKEN", /revoked/);
		assert.equal((await tern.api("DELETE", `/api/tokens/${adminOwn.body.id}`)).status, 200, "an admin revokes any");
		assertError(await tern.api("GET", "/api/tasks", undefined, adminOwn.body.token), 401, "INVALID_TOKEN");
		assert.equal((await create({ name: "to-revoke", scope: "read" }, operator)).status, 201, "a revoked name is free");
	});

	it("refuses an expired, forged or logged-out token, and one whose user is disabled", async () => {
		const made = await create({ name: "short", scope: "read", expiresInDays: 1 }, operator);
		const token = made.body.token as string;
		assertError(await tern.api("GET", "/api/tasks", undefined, `${token.slice(0, -4)}AAAA`), 401, "INVALID_TOKEN");
		const service = tern.broker.getLocalService("auth") as unknown as {
			apiTokens: { update(values: object, options: object): Promise<unknown> };
			tokenRows: { clear(): void };
		};
		await service.apiTokens.update({ expiresAt: Date.now() - 1 }, { where: { id: made.body.id } });
		service.tokenRows.clear();
		assertError(await tern.api("GET", "/api/tasks", undefined, token), 401, "INVALID_TOKEN", /expired/);

		const other = (await create({ name: "logout", scope: "read" }, operator)).body.token as string;
		assert.equal((await tern.api("POST", "/api/auth/logout", undefined, other)).status, 200);
		assertError(await tern.api("GET", "/api/tasks", undefined, other), 401, "INVALID_TOKEN", /revoked/);

		const last = (await create({ name: "disabled", scope: "read" }, operator)).body.token as string;
		assert.equal((await tern.api("GET", "/api/tasks", undefined, last)).status, 200);
		assert.equal((await tern.api("PATCH", `/api/users/${operatorId}`, { disabled: true })).status, 200);
		assertError(await tern.api("GET", "/api/tasks", undefined, last), 401, "INVALID_TOKEN", /disabled/);
	});

	it("refuses a JWT signed like an API token's secret, and a hand-made tern_ token", async () => {
		assertError(await tern.api("GET", "/api/tasks", undefined, "tern_nothing"), 401, "INVALID_TOKEN");
		const fake = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("x"));
		assertError(await tern.api("GET", "/api/tasks", undefined, fake), 401, "INVALID_TOKEN");
	});
});
