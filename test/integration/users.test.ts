/**
 * Users: who may change what (PATCH /api/users/:id), the last admin that is never lost, disabled
 * users, and a password change that refuses every token issued before it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, TestTern, type ApiReply } from "../helpers/tern.ts";
import { confirmedCall } from "../support/tokens.ts";

function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, JSON.stringify(reply.body));
	if (message) assert.match(reply.body.message, message);
}

describe("users", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	const loginReply = (username: string, password: string) =>
		tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null);
	async function login(username: string, password: string): Promise<string> {
		const reply = await loginReply(username, password);
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		return reply.body.token;
	}
	async function makeUser(username: string, role: string, password = `${username}-pass-1`) {
		const reply = await tern.api("POST", "/api/users", { username, password, role });
		assert.equal(reply.status, 201, JSON.stringify(reply.body));
		return { id: reply.body.id as number, token: await login(username, password), password };
	}
	const patch = (id: number, body: unknown, token = tern.adminToken) => tern.api("PATCH", `/api/users/${id}`, body, token);
	const adminId = async () =>
		(await tern.api<{ id: number; username: string }[]>("GET", "/api/users")).body.find(u => u.username === "admin")!.id;

	it("user views carry disabled", async () => {
		const users = (await tern.api("GET", "/api/users")).body as { username: string; disabled: boolean }[];
		assert.deepEqual(
			users.map(u => [u.username, u.disabled]),
			[["admin", false]]
		);
	});

	it("an admin changes another user's role: the user's token carries the new role at once", async () => {
		const olga = await makeUser("olga", "viewer");
		assertError(await tern.api("GET", "/api/users", undefined, olga.token), 403, "FORBIDDEN");
		const changed = await patch(olga.id, { role: "admin" });
		assert.equal(changed.status, 200, JSON.stringify(changed.body));
		assert.equal(changed.body.role, "admin");
		assert.equal(changed.body.disabled, false);
		assert.equal((await tern.api("GET", "/api/users", undefined, olga.token)).status, 200);
		assert.equal((await patch(olga.id, { role: "viewer" })).status, 200);
		assertError(await tern.api("GET", "/api/users", undefined, olga.token), 403, "FORBIDDEN");
	});

	it("a non-admin may change only their own password: not others, not their role or state", async () => {
		const vic = await makeUser("vic", "viewer");
		const oscar = await makeUser("oscar", "operator");
		assertError(await patch(oscar.id, { password: "new-password-1" }, vic.token), 403, "FORBIDDEN");
		assertError(await patch(oscar.id, { role: "viewer" }, vic.token), 403, "FORBIDDEN");
		assertError(await patch(vic.id, { role: "admin" }, vic.token), 403, "FORBIDDEN");
		assertError(await patch(vic.id, { role: "viewer" }, vic.token), 403, "FORBIDDEN");
		assertError(await patch(oscar.id, { disabled: true }, oscar.token), 403, "FORBIDDEN");
		assertError(await patch(oscar.id, { role: "admin", currentPassword: oscar.password }, oscar.token), 403, "FORBIDDEN");
		// Nothing changed.
		const users = (await tern.api("GET", "/api/users")).body as { username: string; role: string; disabled: boolean }[];
		assert.deepEqual(
			users.filter(u => ["vic", "oscar"].includes(u.username)).map(u => [u.username, u.role, u.disabled]),
			[
				["vic", "viewer", false],
				["oscar", "operator", false]
			]
		);
		assert.equal((await tern.api("GET", "/api/tasks", undefined, vic.token)).status, 200);
	});

	it("changing one's own password needs the current one; the change refuses every earlier token", async () => {
		const pat = await makeUser("pat", "operator");
		const second = await login("pat", pat.password);
		assertError(await patch(pat.id, { password: "pat-new-password" }, pat.token), 422, "VALIDATION_ERROR", /currentPassword/);
		assertError(
			await patch(pat.id, { password: "pat-new-password", currentPassword: "wrong-password" }, pat.token),
			401,
			"BAD_CREDENTIALS"
		);
		assert.equal((await tern.api("GET", "/api/tasks", undefined, pat.token)).status, 200, "a refused change changes nothing");

		const done = await patch(pat.id, { password: "pat-new-password", currentPassword: pat.password }, pat.token);
		assert.equal(done.status, 200, JSON.stringify(done.body));
		for (const old of [pat.token, second])
			assertError(await tern.api("GET", "/api/tasks", undefined, old), 401, "INVALID_TOKEN", /password/);
		assertError(await loginReply("pat", pat.password), 401, "BAD_CREDENTIALS");
		const fresh = await login("pat", "pat-new-password");
		assert.equal((await tern.api("GET", "/api/tasks", undefined, fresh)).status, 200, "a token made right after works");
	});

	it("an admin sets another user's password without theirs; that user's tokens die", async () => {
		const rita = await makeUser("rita", "viewer");
		assert.equal((await patch(rita.id, { password: "set-by-admin-1" })).status, 200);
		assertError(await tern.api("GET", "/api/tasks", undefined, rita.token), 401, "INVALID_TOKEN");
		assert.equal((await loginReply("rita", "set-by-admin-1")).status, 200);
	});

	it("a disabled user cannot log in (USER_DISABLED) and its tokens are refused; enabling does not revive them", async () => {
		const dora = await makeUser("dora", "operator");
		const disabled = await patch(dora.id, { disabled: true });
		assert.equal(disabled.status, 200);
		assert.equal(disabled.body.disabled, true);
		assertError(await tern.api("GET", "/api/tasks", undefined, dora.token), 401, "INVALID_TOKEN", /disabled/);
		assertError(await loginReply("dora", dora.password), 403, "USER_DISABLED");
		assertError(await loginReply("dora", "a-wrong-password"), 401, "BAD_CREDENTIALS", undefined);

		assert.equal((await patch(dora.id, { disabled: false })).status, 200);
		assertError(await tern.api("GET", "/api/tasks", undefined, dora.token), 401, "INVALID_TOKEN");
		const fresh = await login("dora", dora.password);
		assert.equal((await tern.api("GET", "/api/tasks", undefined, fresh)).status, 200);
	});

	it("refuses bad changes naming the field", async () => {
		const id = await adminId();
		for (const [body, field] of [
			[{}, "role"],
			[{ role: "root" }, "role"],
			[{ disabled: "yes" }, "disabled"],
			[{ disabled: 1 }, "disabled"],
			[{ password: "short" }, "password"],
			[{ nickname: "x" }, "nickname"]
		] as const)
			assertError(await patch(id, body), 422, "VALIDATION_ERROR", new RegExp(field));
		assertError(await tern.api("PATCH", "/api/users/abc", { role: "viewer" }), 422, "VALIDATION_ERROR", /id/);
		assertError(await patch(999_999, { role: "viewer" }), 404, "USER_NOT_FOUND");
	});

	it("never loses the last enabled admin: not demoted, disabled or deleted", async () => {
		const id = await adminId();
		assertError(await patch(id, { role: "operator" }), 403, "FORBIDDEN", /last admin/);
		assertError(await patch(id, { disabled: true }), 403, "FORBIDDEN", /last admin/);
		assertError(await tern.api("DELETE", `/api/users/${id}`), 403, "FORBIDDEN", /last admin/);
		assert.equal((await tern.api("GET", "/api/users")).status, 200);

		// A disabled admin is no admin: the enabled one is still the last.
		const ada = await makeUser("ada", "admin");
		assert.equal((await patch(ada.id, { disabled: true })).status, 200);
		assertError(await patch(id, { role: "viewer" }), 403, "FORBIDDEN", /last admin/);
		assert.equal((await patch(ada.id, { disabled: false })).status, 200);

		// With another enabled admin, the first may go, and the other is then the last.
		const adaToken = await login("ada", ada.password);
		assert.equal((await patch(id, { role: "operator" })).status, 200);
		assertError(await patch(ada.id, { role: "viewer" }, adaToken), 403, "FORBIDDEN", /last admin/);
		assert.equal((await patch(id, { role: "admin" }, adaToken)).status, 200);
		tern.adminToken = await login("admin", ADMIN_PASSWORD);
	});

	it("two admins demoted at once: one of them stays admin", async () => {
		const id = await adminId();
		const users0 = (await tern.api("GET", "/api/users")).body as { id: number; role: string; disabled: boolean }[];
		for (const other of users0.filter(u => u.role === "admin" && !u.disabled && u.id !== id))
			assert.equal((await patch(other.id, { disabled: true })).status, 200);
		const bea = await makeUser("bea", "admin");
		const both = await Promise.all([patch(id, { role: "operator" }), patch(bea.id, { role: "operator" })]);
		assert.deepEqual(both.map(reply => reply.status).sort(), [200, 403], JSON.stringify(both.map(r => r.body)));
		// Whichever of the two is still admin may list the users.
		const lists = await Promise.all(
			[tern.adminToken, bea.token].map(token => tern.api("GET", "/api/users", undefined, token))
		);
		const users = lists.find(reply => reply.status === 200)!.body as {
			id: number;
			role: string;
			disabled: boolean;
		}[];
		const admins = users.filter(u => u.role === "admin" && !u.disabled);
		assert.equal(admins.length, 1);
		if (admins[0].id !== id) assert.equal((await patch(id, { role: "admin" }, bea.token)).status, 200);
		assert.equal((await tern.api("GET", "/api/users")).status, 200, "the admin is admin again");
	});

	it("deleting a user needs a second confirmation", async () => {
		const gus = await makeUser("gus", "viewer");
		const first = await tern.api("DELETE", `/api/users/${gus.id}`);
		assert.equal(first.status, 202, JSON.stringify(first.body));
		assert.equal(first.body.confirm.action, "auth.removeUser");
		assert.match(first.body.confirm.summary, /gus/);
		assert.equal((await tern.api("GET", "/api/tasks", undefined, gus.token)).status, 200, "nothing deleted yet");
		const done = await confirmedCall(`${tern.url}/api/users/${gus.id}`, "DELETE", tern.adminToken);
		assert.equal(done.status, 200, JSON.stringify(done.body));
		assertError(await tern.api("GET", "/api/tasks", undefined, gus.token), 401, "INVALID_TOKEN");
		assertError(await tern.api("DELETE", `/api/users/${gus.id}`), 404, "USER_NOT_FOUND");
	});
});
