/**
 * Terminal fleet management against a real Tern: PATCH, DELETE with the second
 * confirmation of §6, drain and undrain, the view's transport, capabilities and task counts, pull
 * activity; on SQLite and MariaDB. Refusals are checked by status, error `type`, and that nothing
 * changed.
 */
import { after, before, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor, type ApiReply } from "../helpers/tern.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import type { ConfirmationChallenge, TerminalRecord, TerminalView } from "../../lib/contracts.ts";
import { needs } from "../support/servers.ts";

function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, `expected type ${type}, got ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body.code, status);
	if (message) assert.match(reply.body.message, message);
}

/** The first DELETE: the confirmation token it answers with. */
async function askToken(tern: TestTern, path: string): Promise<string> {
	return (await tern.api<ConfirmationChallenge>("DELETE", path)).body.confirm.token;
}

/** The DELETE repeated with `X-Confirm`. */
async function confirmed(tern: TestTern, path: string, confirm: string, bearer = tern.adminToken): Promise<ApiReply> {
	const res = await fetch(tern.url + path, {
		method: "DELETE",
		headers: { authorization: `Bearer ${bearer}`, "x-confirm": confirm }
	});
	const text = await res.text();
	return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** Resolves once the server has closed the terminal's socket. */
async function disconnected(terminal: { socket: { connected: boolean } }, what: string): Promise<void> {
	const awaited = () => what;
	await waitFor(() => !terminal.socket.connected, 5000, awaited);
}

async function view(tern: TestTern, id: string): Promise<TerminalView> {
	const reply = await tern.api<TerminalView>("GET", `/api/terminals/${id}`);
	assert.equal(reply.status, 200, JSON.stringify(reply.body));
	return reply.body;
}

async function login(tern: TestTern, username: string, role: string): Promise<string> {
	const password = `${username}-password-1`;
	await tern.api("POST", "/api/users", { username, password, role });
	return (await tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null)).body.token;
}

describe("terminal fleet", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	describe("PATCH /api/terminals/:id", () => {
		it("changes name, labels and concurrency; the new labels route tasks at once", async () => {
			await tern.registerTerminal("patch-1", { name: "old", labels: { zone: "a" }, concurrency: 2 });
			const patched = await tern.api<TerminalView>("PATCH", "/api/terminals/patch-1", {
				name: "Build box",
				labels: ["gpu"],
				concurrency: 3
			});
			assert.equal(patched.status, 200, JSON.stringify(patched.body));
			const { name, labels, concurrency } = patched.body;
			assert.deepEqual({ name, labels, concurrency }, { name: "Build box", labels: { gpu: "true" }, concurrency: 3 });
			assert.deepEqual(await view(tern, "patch-1"), patched.body);

			// The record was read again (not served from a cache): the session takes the new labels.
			const token = await tern.registerTerminal("patch-2");
			await tern.api("PATCH", "/api/terminals/patch-2", { labels: { pool: "patched" } });
			const record = await tern.broker.call<TerminalRecord, { id: string }>("terminals.resolve", { id: "patch-2" });
			assert.deepEqual(record.labels, { pool: "patched" });
			const terminal = await tern.connectTerminal("patch-2", token);
			const taskId = await tern.submit({ selector: { labels: { pool: "patched" } }, type: "t" });
			assert.equal((await terminal.nextTask()).taskId, taskId);
			terminal.close();

			const cleared = await tern.api<TerminalView>("PATCH", "/api/terminals/patch-1", { name: null });
			assert.equal(cleared.status, 200);
			assert.equal(cleared.body.name, null);
			assert.equal(cleared.body.concurrency, 3, "fields not given are kept");
		});

		it("refuses bad input with 422 naming the field, and changes nothing", async () => {
			await tern.registerTerminal("patch-bad", { labels: { zone: "a" }, concurrency: 2 });
			const before = await view(tern, "patch-bad");
			const cases: [unknown, RegExp][] = [
				[{ labels: 42 }, /labels/],
				[{ labels: { zone: { nested: true } } }, /labels/],
				[{ concurrency: 0 }, /concurrency/],
				[{ concurrency: 1.5 }, /concurrency/],
				[{ name: 7 }, /name/],
				[{ colour: "red" }, /colour/],
				[{ concurrency: 4, enabled: false }, /enabled/],
				[{}, /at least one of 'name', 'labels', 'concurrency'/]
			];
			for (const [body, field] of cases)
				assertError(await tern.api("PATCH", "/api/terminals/patch-bad", body), 422, "VALIDATION_ERROR", field);
			assert.deepEqual(await view(tern, "patch-bad"), before);

			assertError(await tern.api("PATCH", "/api/terminals/no-such", { name: "x" }), 404, "TERMINAL_NOT_FOUND", /no-such/);
			const viewer = await login(tern, "patch-viewer", "viewer");
			assertError(await tern.api("PATCH", "/api/terminals/patch-bad", { name: "x" }, viewer), 403, "FORBIDDEN");
			assert.deepEqual(await view(tern, "patch-bad"), before);
		});
	});

	describe("DELETE /api/terminals/:id", () => {
		it("answers 202 with a confirmation and changes nothing; repeated with X-Confirm it deletes", async () => {
			const token = await tern.registerTerminal("del-1", { concurrency: 1 });
			const terminal = await tern.connectTerminal("del-1", token);
			const running = await tern.submit({ terminalId: "del-1", type: "t" });
			await terminal.nextTask();
			const queued = await tern.submit({ terminalId: "del-1", type: "t" });
			const selectorTask = await tern.submit({
				selector: { labels: { nobody: "here" } },
				type: "t",
				waitForTerminal: true
			});

			const asked = await tern.api<ConfirmationChallenge>("DELETE", "/api/terminals/del-1");
			assert.equal(asked.status, 202, JSON.stringify(asked.body));
			const { confirm } = asked.body;
			assert.equal(typeof confirm.token, "string");
			assert.equal(confirm.action, "terminals.delete");
			assert.match(confirm.summary, /del-1/);
			assert.match(confirm.summary, /2 unfinished task/);
			const ttl = Date.parse(confirm.expiresAt) - Date.now();
			assert.ok(ttl > 50_000 && ttl <= 60_000, `expires in about 60 s (${ttl} ms)`);
			assert.equal((await view(tern, "del-1")).status, "online", "nothing changed");
			assert.equal((await tern.query(queued)).status, "PENDING");
			assert.ok(terminal.socket.connected);

			const done = await confirmed(tern, "/api/terminals/del-1", confirm.token);
			assert.equal(done.status, 200, JSON.stringify(done.body));
			assert.deepEqual(done.body, { id: "del-1", deleted: true, tasks: { cancelled: 2 } });
			assertError(await tern.api("GET", "/api/terminals/del-1"), 404, "TERMINAL_NOT_FOUND");
			assert.ok(!(await tern.api<TerminalView[]>("GET", "/api/terminals")).body.some(t => t.id === "del-1"));
			assert.equal((await tern.query(running)).status, "CANCELLED");
			assert.equal((await tern.query(queued)).status, "CANCELLED");
			assert.equal((await tern.query(selectorTask)).status, "PENDING", "a selector task is not the terminal's");

			// Its session is closed and its token no longer works, on any channel.
			await disconnected(terminal, "the deleted terminal's socket to close");
			assertError(await tern.api("GET", "/api/task/pull", undefined, token), 401, "INVALID_TOKEN");
			await assert.rejects(tern.connectTerminal("del-1", token), (err: Error & { data?: { type: string } }) => {
				assert.equal(err.data?.type, "INVALID_TOKEN");
				return true;
			});
			// Deleting it again: it is gone.
			assertError(await confirmed(tern, "/api/terminals/del-1", confirm.token), 404, "TERMINAL_NOT_FOUND");
		});

		it("refuses a wrong confirmation with 412 CONFIRMATION_INVALID and deletes nothing", async () => {
			await tern.registerTerminal("del-2");
			await tern.registerTerminal("del-3");
			const forOther = await askToken(tern, "/api/terminals/del-3");
			const forThis = await askToken(tern, "/api/terminals/del-2");
			const [body, signature] = forThis.split(".");
			const operator = await login(tern, "del-operator", "operator");
			const refusals: [string, string][] = [
				[forOther, tern.adminToken],
				["not-a-token", tern.adminToken],
				[`${body}.${signature.slice(0, -2)}AA`, tern.adminToken],
				// Issued to the admin: another user cannot use it.
				[forThis, operator]
			];
			for (const [confirmToken, bearer] of refusals)
				assertError(await confirmed(tern, "/api/terminals/del-2", confirmToken, bearer), 412, "CONFIRMATION_INVALID");
			assert.equal((await view(tern, "del-2")).id, "del-2", "still there");

			const viewer = await login(tern, "del-viewer", "viewer");
			assertError(await tern.api("DELETE", "/api/terminals/del-2", undefined, viewer), 403, "FORBIDDEN");
			assertError(await tern.api("DELETE", "/api/terminals/no-such"), 404, "TERMINAL_NOT_FOUND");
		});

		it("deletes at once when called by another service (no caller to confirm)", async () => {
			await tern.registerTerminal("del-internal");
			const done = await tern.broker.call("terminals.delete", { id: "del-internal" });
			assert.deepEqual(done, { id: "del-internal", deleted: true, tasks: { cancelled: 0 } });
			assert.equal(await tern.broker.call("terminals.resolve", { id: "del-internal" }), null);
		});
	});

	describe("drain and undrain", () => {
		it("marks it draining (status unchanged); once its running task ends it is told to disconnect", async () => {
			const token = await tern.registerTerminal("drain-1", { concurrency: 2 });
			const terminal = await tern.connectTerminal("drain-1", token);
			const taskId = await tern.submit({ terminalId: "drain-1", type: "t" });
			const task = await terminal.nextTask();
			await terminal.ack(task);

			const drained = await tern.api<TerminalView>("POST", "/api/terminals/drain-1/drain");
			assert.equal(drained.status, 200, JSON.stringify(drained.body));
			assert.equal(drained.body.draining, true);
			assert.equal(drained.body.status, "online");
			assert.equal(drained.body.running, 1);
			const record = await tern.broker.call<TerminalRecord, { id: string }>("terminals.resolve", { id: "drain-1" });
			assert.equal(record.draining, true, "the dispatcher and gateways see it");
			assert.ok((await tern.api<TerminalView[]>("GET", "/api/terminals")).body.find(t => t.id === "drain-1")?.draining);
			assert.ok(terminal.socket.connected, "it still runs a task");

			await terminal.result(task);
			await tern.waitForStatus(taskId, "COMPLETED");
			await disconnected(terminal, "the drained terminal to be disconnected");
			await tern.waitForTerminal("drain-1", "offline");
			assert.equal((await view(tern, "drain-1")).draining, true, "still draining until undrained");

			const undrained = await tern.api<TerminalView>("POST", "/api/terminals/drain-1/undrain");
			assert.equal(undrained.status, 200);
			assert.equal(undrained.body.draining, false);
			const again = await tern.connectTerminal("drain-1", token);
			const next = await tern.submit({ terminalId: "drain-1", type: "t" });
			assert.equal((await again.nextTask()).taskId, next, "it takes work again");
			again.close();
		});

		it("disconnects a draining terminal that runs nothing at once; refuses unknown ids and viewers", async () => {
			const token = await tern.registerTerminal("drain-idle");
			const terminal = await tern.connectTerminal("drain-idle", token);
			assert.equal((await tern.api("POST", "/api/terminals/drain-idle/drain")).status, 200);
			await disconnected(terminal, "the idle drained terminal to be disconnected");
			assertError(await tern.api("POST", "/api/terminals/no-such/drain"), 404, "TERMINAL_NOT_FOUND");
			assertError(await tern.api("POST", "/api/terminals/no-such/undrain"), 404, "TERMINAL_NOT_FOUND");
			const viewer = await login(tern, "drain-viewer", "viewer");
			assertError(await tern.api("POST", "/api/terminals/drain-idle/undrain", undefined, viewer), 403, "FORBIDDEN");
			assert.equal((await view(tern, "drain-idle")).draining, true);
		});

		it("gives a draining terminal no new task, pushed or pulled", async () => {
			const token = await tern.registerTerminal("drain-busy", { concurrency: 4 });
			const terminal = await tern.connectTerminal("drain-busy", token);
			await tern.submit({ terminalId: "drain-busy", type: "t" });
			const held = await terminal.nextTask();
			await terminal.ack(held);
			assert.equal((await tern.api("POST", "/api/terminals/drain-busy/drain")).status, 200);

			const waiting = await tern.submit({ terminalId: "drain-busy", type: "t" });
			// Another terminal's task goes through a full drain meanwhile: the draining one's still waits.
			const probeToken = await tern.registerTerminal("drain-probe");
			const probe = await tern.connectTerminal("drain-probe", probeToken);
			await tern.submit({ terminalId: "drain-probe", type: "t" });
			await probe.nextTask();
			probe.close();
			assert.equal((await tern.query(waiting)).status, "PENDING");
			assert.equal(terminal.tasks.length, 1);
			const pulled = await tern.api("GET", "/api/task/pull", undefined, token);
			assert.equal(pulled.status, 200);
			assert.deepEqual(pulled.body.tasks, []);
			// Nor a fan-out's share: a broadcast that only it would match is refused.
			await tern.api("PATCH", "/api/terminals/drain-busy", { labels: { pool: "draining" } });
			const fanOut = await tern.api("POST", "/api/task/submit", {
				selector: { labels: { pool: "draining" }, strategy: "broadcast" },
				type: "t"
			});
			assert.equal(fanOut.status, 422);
			assert.equal(fanOut.body.type, "NO_MATCHING_TERMINAL");
			assert.equal((await view(tern, "drain-busy")).queued, 1);

			await tern.api("POST", "/api/terminals/drain-busy/undrain");
			assert.equal((await terminal.nextTask()).taskId, waiting);
			terminal.close();
		});
	});

	describe("the terminal view", () => {
		it("shows transport, capabilities, running and queued", async () => {
			const sioToken = await tern.registerTerminal("view-sio", { concurrency: 1 });
			const wsToken = await tern.registerTerminal("view-ws");
			await tern.registerTerminal("view-off");
			const sio = await tern.connectTerminal("view-sio", sioToken);
			const ws = await tern.openWs("/ws/terminal/view-ws?capabilities=shell,python", wsToken);
			await tern.waitForTerminal("view-ws", "online");
			await tern.submit({ terminalId: "view-sio", type: "t" });
			await sio.nextTask();
			await tern.submit({ terminalId: "view-sio", type: "t" });
			await tern.submit({ terminalId: "view-off", type: "t" });

			const list = new Map((await tern.api<TerminalView[]>("GET", "/api/terminals")).body.map(t => [t.id, t]));
			const sioView = list.get("view-sio")!;
			assert.equal(sioView.transport, "socketio");
			assert.equal(sioView.capabilities, null);
			assert.equal(sioView.running, 1);
			assert.equal(sioView.queued, 1);
			assert.equal(sioView.draining, false);
			const wsView = list.get("view-ws")!;
			assert.equal(wsView.transport, "ws");
			assert.deepEqual(wsView.capabilities, ["shell", "python"]);
			assert.equal(wsView.running, 0);
			const offView = list.get("view-off")!;
			assert.equal(offView.status, "offline");
			assert.equal(offView.transport, null);
			assert.equal(offView.queued, 1);
			assert.deepEqual(await view(tern, "view-sio"), sioView, "the one and the list agree");
			sio.close();
			await ws.close();
		});

		it("records a pull's activity (terminals.touch): online, transport pull, lastActiveAt now", async () => {
			await tern.registerTerminal("pull-1");
			assert.equal((await view(tern, "pull-1")).status, "offline");
			const before = Date.now();
			assert.deepEqual(await tern.broker.call("terminals.touch", { id: "pull-1", transport: "pull" }), { ok: true });
			const touched = await view(tern, "pull-1");
			assert.equal(touched.status, "online");
			assert.equal(touched.transport, "pull");
			assert.ok(Date.parse(touched.lastActiveAt!) >= before - 1000, touched.lastActiveAt!);
			const online = (await tern.api<TerminalView[]>("GET", "/api/terminals?status=online")).body;
			assert.ok(online.some(t => t.id === "pull-1"));
			await assert.rejects(
				tern.broker.call("terminals.touch", { id: "no-such", transport: "pull" }),
				(err: Error & { type?: string }) => err.type === "TERMINAL_NOT_FOUND"
			);
			await assert.rejects(
				tern.broker.call("terminals.touch", { id: "pull-1", transport: "carrier-pigeon" }),
				(err: Error & { type?: string }) => err.type === "VALIDATION_ERROR"
			);
		});

		it("lists a terminal that pulls over REST as online", async () => {
			const token = await tern.registerTerminal("pull-rest");
			assert.equal((await tern.api("GET", "/api/task/pull", undefined, token)).status, 200);
			const pulled = await view(tern, "pull-rest");
			assert.equal(pulled.status, "online");
			assert.equal(pulled.transport, "pull");
		});
	});
});

describe("terminal fleet: confirmations expire", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => {
		mock.timers.reset();
		return tern.close();
	});

	it("accepts a confirmation within 60 s and refuses it after with 412 CONFIRMATION_EXPIRED", async () => {
		await tern.registerTerminal("exp-1");
		await tern.registerTerminal("exp-2");
		const issuedAt = Date.now();
		const late = await askToken(tern, "/api/terminals/exp-1");
		const inTime = await askToken(tern, "/api/terminals/exp-2");

		// Only Date is faked, so that the server's own timers keep running; nothing else is live here.
		mock.timers.enable({ apis: ["Date"], now: issuedAt + 59_000 });
		assert.equal((await confirmed(tern, "/api/terminals/exp-2", inTime)).status, 200);
		mock.timers.setTime(issuedAt + 61_000);
		assertError(await confirmed(tern, "/api/terminals/exp-1", late), 412, "CONFIRMATION_EXPIRED", /expired/);
		mock.timers.reset();
		assert.equal((await view(tern, "exp-1")).id, "exp-1", "nothing was deleted");
	});
});

describe("terminal fleet on MariaDB", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;
	let tern: TestTern;

	before(async () => {
		db = await TestDatabase.create("tern_fleet");
		tern = await TestTern.start({ dbUri: db.uri });
	});
	after(async () => {
		await tern?.close();
		await db?.drop();
	});

	it("migrates draining and pulledAt, and patches, drains, records activity and deletes there", async () => {
		await tern.registerTerminal("my-1", { labels: { zone: "a" } });
		await tern.registerTerminal("my-2");
		const patched = await tern.api<TerminalView>("PATCH", "/api/terminals/my-1", { name: "maria", concurrency: 5 });
		assert.deepEqual([patched.status, patched.body.name, patched.body.concurrency], [200, "maria", 5]);

		assert.equal((await tern.api<TerminalView>("POST", "/api/terminals/my-1/drain")).body.draining, true);
		const record = await tern.broker.call<TerminalRecord, { id: string }>("terminals.resolve", { id: "my-1" });
		assert.equal(record.draining, true);
		assert.equal((await tern.api<TerminalView>("POST", "/api/terminals/my-1/undrain")).body.draining, false);

		await tern.broker.call("terminals.touch", { id: "my-2", transport: "pull" });
		assert.equal((await view(tern, "my-2")).transport, "pull");

		// The batched lastActiveAt statement, with its bound parameters, on this dialect.
		const at = Date.parse("2026-01-01T00:00:00Z");
		const items = ["my-1", "unknown"].map(terminalId => ({ terminalId, lastActiveAt: at }));
		await tern.broker.broadcast("terminal.active", { items });
		await waitFor(
			async () => (await view(tern, "my-1")).lastActiveAt === new Date(at).toISOString(),
			5000,
			() => "my-1's lastActiveAt to be recorded"
		);

		const token = await askToken(tern, "/api/terminals/my-1");
		const done = await confirmed(tern, "/api/terminals/my-1", token);
		assert.deepEqual(done.body, { id: "my-1", deleted: true, tasks: { cancelled: 0 } });
		assertError(await tern.api("GET", "/api/terminals/my-1"), 404, "TERMINAL_NOT_FOUND");
	});
});
