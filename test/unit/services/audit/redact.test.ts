import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MAX_CHANGES_BYTES, changesOf, redact } from "../../../../lib/audit/redact.ts";
import { actorOf, objectOf, toEntry, type AuditedCall } from "../../../../lib/audit/entry.ts";
import { ACCESS } from "../../../../lib/contracts/access.ts";

describe("audit redaction", () => {
	it("masks every sensitive key at every depth, whatever its case", () => {
		assert.deepEqual(
			redact({
				name: "hook",
				config: { url: "https://x", Secret: "s", headers: { Authorization: "Bearer t", "x-team": "ops" } },
				list: [{ apiKey: "k", ok: 1 }],
				PASSWORD: "p",
				clientCredentials: { id: 1 },
				refreshToken: "r"
			}),
			{
				name: "hook",
				config: { url: "https://x", Secret: "***", headers: { Authorization: "***", "x-team": "ops" } },
				list: [{ apiKey: "***", ok: 1 }],
				PASSWORD: "***",
				clientCredentials: "***",
				refreshToken: "***"
			}
		);
	});

	it("takes the object's id out, masks the whole `secrets` field, writes large values as their size", () => {
		const payload = { doc: "y".repeat(3000) };
		assert.deepEqual(
			changesOf(
				{ id: "job-1", secrets: { DB_PASSWORD: "hunter2", PLAIN: "v" }, payload, priority: 3, password: "pw" },
				"id"
			),
			{ secrets: "***", payload: `<${JSON.stringify(payload).length} bytes>`, priority: 3, password: "***" }
		);
	});

	it("is null for a call that sets nothing", () => {
		assert.equal(changesOf({ id: "job-1" }, "id"), null);
		assert.equal(changesOf({}), null);
		assert.equal(changesOf(undefined), null);
		assert.equal(changesOf({ a: undefined }), null);
	});

	it("keeps a row's changes bounded however many fields a call sets", () => {
		const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`field${i}`, "z".repeat(2000)]));
		const changes = changesOf(many)!;
		assert.ok(JSON.stringify(changes).length < MAX_CHANGES_BYTES, String(JSON.stringify(changes).length));
		assert.match(String(changes.truncated), /bytes/);
	});

	it("does not walk a value nested without end", () => {
		let deep: Record<string, unknown> = {};
		const root = deep;
		for (let i = 0; i < 1000; i++) deep = (deep.a = {}) as Record<string, unknown>;
		assert.match(JSON.stringify(redact(root)), /<nested>/);
	});
});

describe("audit redaction of what is sealed at rest", () => {
	it("masks a task's sensitive payload paths, in a task, a job's task and a batch", () => {
		const task = { type: "deploy", payload: { env: { TOKEN_A: "plain-1", REGION: "eu" } }, sensitive: ["env.TOKEN_A"] };
		for (const [params, read] of [
			[task, (c: Record<string, unknown>) => c.payload],
			[{ name: "nightly", task }, (c: Record<string, unknown>) => (c.task as Record<string, unknown>).payload],
			[{ tasks: [task] }, (c: Record<string, unknown>) => (c.tasks as Record<string, unknown>[])[0]!.payload]
		] as const) {
			const changes = changesOf(params)!;
			assert.deepEqual(read(changes), { env: { TOKEN_A: "***", REGION: "eu" } });
			assert.ok(!JSON.stringify(changes).includes("plain-1"));
		}
		assert.equal(task.payload.env.TOKEN_A, "plain-1", "the call's own params are left as they were");
	});

	it("masks the body of a script marked sensitive, and only then", () => {
		assert.equal(changesOf({ name: "s", body: "echo hidden", sensitive: true })!.body, "***");
		assert.equal(changesOf({ name: "s", body: "echo shown" })!.body, "echo shown");
	});
});

describe("audit entries", () => {
	const base: AuditedCall = {
		at: 1,
		action: "scheduler.update",
		access: ACCESS["scheduler.update"]!,
		params: { id: "j1", enabled: false },
		principal: { kind: "user", userId: 1, username: "ana", role: "operator" },
		client: { address: "10.1.2.3", userAgent: "curl/8" },
		outcome: "ok"
	};

	it("names users, API tokens and terminals", () => {
		assert.deepEqual(actorOf(base), { actor: "ana", actorType: "user" });
		assert.deepEqual(
			actorOf({
				...base,
				principal: {
					kind: "user",
					userId: 1,
					username: "ana",
					role: "admin",
					apiToken: { id: "t", name: "ci", scope: "submit" }
				}
			}),
			{ actor: "token:ci", actorType: "token" }
		);
		assert.deepEqual(actorOf({ ...base, principal: { kind: "terminal", terminalId: "build-7" } }), {
			actor: "build-7",
			actorType: "terminal"
		});
	});

	it("names the attempted user of a login: anonymous when it failed", () => {
		const login = { ...base, action: "auth.login", principal: undefined, params: { username: "eve", password: "x" } };
		assert.deepEqual(actorOf({ ...login, outcome: "BAD_CREDENTIALS" }), { actor: "eve", actorType: "anonymous" });
		assert.deepEqual(actorOf(login), { actor: "eve", actorType: "user" });
		const entry = toEntry({ ...login, access: ACCESS["auth.login"]! });
		assert.equal(entry.changes, null, "a password is not a change");
		assert.equal(entry.object, "user:eve");
	});

	it("names the object from the params, or from the answer for a generated id, cut to 255", () => {
		assert.equal(objectOf(base), "job:j1");
		const register = {
			...base,
			access: ACCESS["terminals.register"]!,
			params: { labels: {} },
			result: { id: "gen-1", token: "t" }
		};
		assert.equal(objectOf(register), "terminal:gen-1");
		assert.equal(objectOf({ ...base, params: { id: "x".repeat(400) } })!.length, 255);
		assert.equal(objectOf({ ...base, access: ACCESS["dispatcher.submitBatch"]! }), null);
	});

	it("makes a whole entry", () => {
		assert.deepEqual(toEntry(base), {
			at: 1,
			actor: "ana",
			actorType: "user",
			action: "scheduler.update",
			object: "job:j1",
			address: "10.1.2.3",
			userAgent: "curl/8",
			outcome: "ok",
			changes: { enabled: false }
		});
	});
});

describe("audit text fields", () => {
	it("are cut to their column and stay well-formed", async () => {
		const { cut } = await import("../../../../lib/audit/entry.ts");
		assert.equal(cut("abc", 2), "ab");
		assert.equal(cut("a😀", 2), "a\uFFFD", "half an emoji is not sent to the database");
		assert.equal(cut("a😀", 3), "a😀");
	});
});
