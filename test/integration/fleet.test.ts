/**
 * Terminal fleet management against a real Tern (design.md §10): PATCH, DELETE with the second
 * confirmation of §6, drain and undrain, and the terminal view's transport, capabilities and
 * task counts — including a terminal that only polls over HTTP. Refusals are checked by status,
 * error `type`, and that nothing changed.
 *
 * Tests marked `todo` need the dispatcher's side (it must skip draining terminals and record
 * pulls with `terminals.touch`); they run, and are reported, but do not fail the suite.
 */
import { after, before, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor, type ApiReply } from "../helpers/tern.ts";
import type { ConfirmationChallenge, TerminalRecord, TerminalView } from "../../lib/contracts.ts";
import { toView } from "../../services/terminals/views.ts";
import type { TerminalRow } from "../../models/terminal.model.ts";

function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, `expected type ${type}, got ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body.code, status);
	if (message) assert.match(reply.body.message, message);
}

/** A REST call with extra headers (X-Confirm). */
async function call(tern: TestTern, method: string, path: string, headers: Record<string, string>, token = tern.adminToken) {
	const res = await fetch(tern.url + path, { method, headers: { authorization: `Bearer ${token}`, ...headers } });
	const text = await res.text();
	return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers } as ApiReply;
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
			assert.equal(patched.body.name, "Build box");
			assert.deepEqual(patched.body.labels, { gpu: "true" });
			assert.equal(patched.body.concurrency, 3);
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
			const selectorTask = await tern.submit({ selector: { labels: { nobody: "here" } }, type: "t" });

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

			const done = await call(tern, "DELETE", "/api/terminals/del-1", { "X-Confirm": confirm.token });
			assert.equal(done.status, 200, JSON.stringify(done.body));
			assert.deepEqual(done.body, { id: "del-1", deleted: true, tasks: { cancelled: 2 } });
			assertError(await tern.api("GET", "/api/terminals/del-1"), 404, "TERMINAL_NOT_FOUND");
			assert.ok(!(await tern.api<TerminalView[]>("GET", "/api/terminals")).body.some(t => t.id === "del-1"));
			assert.equal((await tern.query(running)).status, "CANCELLED");
			assert.equal((await tern.query(queued)).status, "CANCELLED");
			assert.equal((await tern.query(selectorTask)).status, "PENDING", "a selector task is not the terminal's");

			// Its session is closed and its token no longer works, on any channel.
			await waitFor(
				() => !terminal.socket.connected,
				5000,
				() => "the deleted terminal's socket to close"
			);
			assertError(await tern.api("GET", "/api/task/pull", undefined, token), 401, "INVALID_TOKEN");
			await assert.rejects(tern.connectTerminal("del-1", token), (err: Error & { data?: { type: string } }) => {
				assert.equal(err.data?.type, "INVALID_TOKEN");
				return true;
			});
			// Deleting it again: it is gone.
			assertError(
				await call(tern, "DELETE", "/api/terminals/del-1", { "X-Confirm": confirm.token }),
				404,
				"TERMINAL_NOT_FOUND"
			);
		});

		it("refuses a wrong confirmation with 412 CONFIRMATION_INVALID and deletes nothing", async () => {
			await tern.registerTerminal("del-2");
			await tern.registerTerminal("del-3");
			const forOther = (await tern.api<ConfirmationChallenge>("DELETE", "/api/terminals/del-3")).body.confirm.token;
			const forThis = (await tern.api<ConfirmationChallenge>("DELETE", "/api/terminals/del-2")).body.confirm.token;
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
				assertError(
					await call(tern, "DELETE", "/api/terminals/del-2", { "X-Confirm": confirmToken }, bearer),
					412,
					"CONFIRMATION_INVALID"
				);
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
			await waitFor(
				() => !terminal.socket.connected,
				5000,
				() => "the drained terminal to be disconnected"
			);
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
			await waitFor(
				() => !terminal.socket.connected,
				5000,
				() => "the idle drained terminal to be disconnected"
			);
			assertError(await tern.api("POST", "/api/terminals/no-such/drain"), 404, "TERMINAL_NOT_FOUND");
			assertError(await tern.api("POST", "/api/terminals/no-such/undrain"), 404, "TERMINAL_NOT_FOUND");
			const viewer = await login(tern, "drain-viewer", "viewer");
			assertError(await tern.api("POST", "/api/terminals/drain-idle/undrain", undefined, viewer), 403, "FORBIDDEN");
			assert.equal((await view(tern, "drain-idle")).draining, true);
		});

		it(
			"gives a draining terminal no new task, pushed or pulled",
			{ todo: "the dispatcher must check draining" },
			async () => {
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
				assert.equal((await view(tern, "drain-busy")).queued, 1);

				await tern.api("POST", "/api/terminals/drain-busy/undrain");
				assert.equal((await terminal.nextTask()).taskId, waiting);
				terminal.close();
			}
		);
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

		it("lists a terminal that polls as online over pull, and offline once it stops (defect 7)", () => {
			const now = Date.parse("2026-03-01T12:00:00Z");
			const row: TerminalRow = {
				id: "p",
				name: null,
				labels: "{}",
				concurrency: 1,
				enabled: true,
				keyVersion: 1,
				lastActiveAt: now - 600_000,
				draining: false,
				pulledAt: now - 59_000,
				createdAt: now - 3_600_000,
				updatedAt: now - 3_600_000
			};
			const counts = { running: 0, queued: 0 };
			const polling = toView(row, undefined, counts, now, 60_000);
			assert.equal(polling.status, "online");
			assert.equal(polling.transport, "pull");
			assert.equal(polling.lastActiveAt, new Date(now - 59_000).toISOString());
			const stopped = toView({ ...row, pulledAt: now - 60_000 }, undefined, counts, now, 60_000);
			assert.equal(stopped.status, "offline");
			assert.equal(stopped.transport, null);
			assert.equal(stopped.lastActiveAt, new Date(now - 60_000).toISOString(), "when it was last seen");
			assert.equal(toView({ ...row, enabled: false }, undefined, counts, now, 60_000).status, "disabled");
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

		it("lists a terminal that pulls over REST as online", { todo: "dispatcher.pull must call terminals.touch" }, async () => {
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
		const late = (await tern.api<ConfirmationChallenge>("DELETE", "/api/terminals/exp-1")).body.confirm.token;
		const inTime = (await tern.api<ConfirmationChallenge>("DELETE", "/api/terminals/exp-2")).body.confirm.token;

		// Only Date is faked, so that the server's own timers keep running; nothing else is live here.
		mock.timers.enable({ apis: ["Date"], now: issuedAt + 59_000 });
		assert.equal((await call(tern, "DELETE", "/api/terminals/exp-2", { "X-Confirm": inTime })).status, 200);
		mock.timers.setTime(issuedAt + 61_000);
		assertError(
			await call(tern, "DELETE", "/api/terminals/exp-1", { "X-Confirm": late }),
			412,
			"CONFIRMATION_EXPIRED",
			/expired/
		);
		mock.timers.reset();
		assert.equal((await view(tern, "exp-1")).id, "exp-1", "nothing was deleted");
	});
});
