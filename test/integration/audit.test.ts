/**
 * The audit log end to end: a scripted session over REST (a failed login, a login, a user, a
 * terminal, a job created, changed and deleted, a terminal deleted through its second
 * confirmation, tasks submitted, refused calls), then its rows as `GET /api/audit` shows them,
 * its filters and paging, and `POST /api/audit/verify` on an untouched log, on a row edited with
 * raw SQL, on rows swapped, on a row removed from the middle and from the end; and the calls going
 * on while the audit service is away. Once on SQLite, once on MariaDB.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Sequelize } from "sequelize";
import type { ServiceSchema } from "moleculer";
import AuditService from "../../services/audit.service.ts";
import { ADMIN_PASSWORD, TestTern, waitFor } from "../helpers/tern.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import type { AuditRow, AuditVerification } from "../../lib/contracts.ts";
import { needs } from "../support/servers.ts";

const AGENT = "audit-test/1.0 (scripted session)";

interface Answer<T = any> {
	status: number;
	body: T;
}

for (const backend of ["SQLite", "MariaDB"] as const) {
	describe(`audit on ${backend}`, { skip: backend === "MariaDB" && needs("mariadb") }, () => {
		let tern: TestTern;
		let db: TestDatabase | undefined;
		let viewerToken: string;
		let jobId: string;
		let taskId: string;

		/** A REST call with a User-Agent (and headers of its own). */
		async function http<T = any>(
			method: string,
			path: string,
			body?: unknown,
			token: string | null = tern.adminToken,
			headers: Record<string, string> = {}
		): Promise<Answer<T>> {
			const res = await fetch(tern.url + path, {
				method,
				headers: {
					"user-agent": AGENT,
					...(token ? { authorization: `Bearer ${token}` } : {}),
					...(body === undefined ? {} : { "content-type": "application/json" }),
					...headers
				},
				body: body === undefined ? undefined : JSON.stringify(body)
			});
			const text = await res.text();
			return { status: res.status, body: text ? JSON.parse(text) : null };
		}

		const list = (query = "", token: string | null = tern.adminToken) =>
			http<{ rows: AuditRow[]; total: number }>("GET", `/api/audit${query}`, undefined, token);
		const verify = async () => {
			const reply = await http<AuditVerification>("POST", "/api/audit/verify");
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
			return reply.body;
		};
		/** Every row, oldest first, once at least `count` are written (they are written after the calls answer). */
		async function rows(count: number): Promise<AuditRow[]> {
			let got: AuditRow[] = [];
			await waitFor(
				async () => (got = (await list("?pageSize=500")).body.rows).length >= count,
				5000,
				() => `${count} audit rows (have ${got.length})`
			);
			return got.reverse();
		}
		const sql = () => (tern.broker.getLocalService("audit") as unknown as { db: Sequelize }).db;

		before(async () => {
			if (backend === "MariaDB") db = await TestDatabase.create("tern_audit");
			tern = await TestTern.start({ dbUri: db?.uri });
		});
		after(async () => {
			await tern.close();
			await db?.drop();
		});

		it("writes a row for every change and every refusal of a scripted session", async () => {
			assert.equal((await http("POST", "/api/auth/login", { username: "admin", password: "wrong" }, null)).status, 401);
			assert.equal(
				(await http("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD }, null)).status,
				200
			);
			const user = await http("POST", "/api/users", { username: "vera", password: "vera-password-1", role: "viewer" });
			assert.equal(user.status, 201, JSON.stringify(user.body));
			assert.equal((await http("POST", "/api/users", { username: "bad", password: "x", role: "boss" })).status, 422);
			assert.equal((await http("POST", "/api/terminals", { id: "audit-t1", labels: { site: "lab" } })).status, 201);
			const job = await http("POST", "/api/jobs", {
				name: "audit-job",
				schedule: { cron: "0 0 1 1 *" },
				task: { terminalId: "audit-t1", type: "report", payload: { year: true } }
			});
			assert.equal(job.status, 201, JSON.stringify(job.body));
			jobId = job.body.id;
			// Run now: the job submits its task, and that is one row (the job's), not two.
			const run = await http("POST", `/api/jobs/${jobId}/execute`);
			assert.equal(run.status, 200, JSON.stringify(run.body));
			assert.equal((await http("PUT", `/api/jobs/${jobId}`, { enabled: false })).status, 200);
			// A delete asks for a second confirmation first (202, nothing changed), then runs with X-Confirm.
			const ask = await http("DELETE", `/api/jobs/${jobId}`);
			if (ask.status === 202) {
				const done = await http("DELETE", `/api/jobs/${jobId}`, undefined, tern.adminToken, {
					"x-confirm": ask.body.confirm.token
				});
				assert.equal(done.status, 200, JSON.stringify(done.body));
			} else assert.equal(ask.status, 200, JSON.stringify(ask.body));
			const askTerminal = await http("DELETE", "/api/terminals/audit-t1");
			assert.equal(askTerminal.status, 202, JSON.stringify(askTerminal.body));
			const deleted = await http("DELETE", "/api/terminals/audit-t1", undefined, tern.adminToken, {
				"x-confirm": askTerminal.body.confirm.token
			});
			assert.equal(deleted.status, 200, JSON.stringify(deleted.body));

			assert.equal((await http("POST", "/api/terminals", { id: "audit-t2" })).status, 201);
			const task = await http("POST", "/api/task/submit", {
				terminalId: "audit-t2",
				type: "deploy",
				payload: { big: "x".repeat(4096), apiToken: "tok-123" }
			});
			assert.equal(task.status, 201, JSON.stringify(task.body));
			taskId = task.body.taskId;
			// `secrets` in a task body: its values never reach the log, whether this build takes the field or not.
			const withSecrets = await http("POST", "/api/task/submit", {
				terminalId: "audit-t2",
				type: "deploy",
				secrets: { DB_PASSWORD: "hunter2" }
			});
			assert.ok([201, 422].includes(withSecrets.status), JSON.stringify(withSecrets.body));

			viewerToken = (await http("POST", "/api/auth/login", { username: "vera", password: "vera-password-1" }, null)).body
				.token;
			assert.equal(
				(await http("POST", "/api/task/submit", { terminalId: "audit-t2", type: "deploy" }, viewerToken)).status,
				403
			);

			const all = await rows(16);
			const shown = all.map(r => [r.actor, r.actorType, r.action, r.object, r.outcome]);
			const expected = [
				["admin", "user", "auth.login", "user:admin", "ok"], // TestTern.start's own login
				["admin", "anonymous", "auth.login", "user:admin", "BAD_CREDENTIALS"],
				["admin", "user", "auth.login", "user:admin", "ok"],
				["admin", "user", "auth.createUser", "user:vera", "ok"],
				["admin", "user", "auth.createUser", "user:bad", "VALIDATION_ERROR"],
				["admin", "user", "terminals.register", "terminal:audit-t1", "ok"],
				["admin", "user", "scheduler.create", "job:audit-job", "ok"],
				["admin", "user", "scheduler.execute", `job:${jobId}`, "ok"],
				["admin", "user", "scheduler.update", `job:${jobId}`, "ok"],
				["admin", "user", "scheduler.remove", `job:${jobId}`, "ok"],
				["admin", "user", "terminals.delete", "terminal:audit-t1", "ok"],
				["admin", "user", "terminals.register", "terminal:audit-t2", "ok"],
				["admin", "user", "dispatcher.submit", "task:deploy", "ok"],
				["admin", "user", "dispatcher.submit", "task:deploy", withSecrets.status === 201 ? "ok" : "VALIDATION_ERROR"],
				["vera", "user", "auth.login", "user:vera", "ok"],
				["vera", "user", "dispatcher.submit", "task:deploy", "FORBIDDEN"]
			];
			assert.deepEqual(shown, expected);

			const session = all.slice(1);
			for (const row of session) {
				assert.equal(row.userAgent, AGENT, JSON.stringify(row));
				assert.match(row.address ?? "", /127\.0\.0\.1/);
				assert.ok(Date.parse(row.at) > Date.now() - 60_000, row.at);
			}
			assert.equal(all[0]!.userAgent, "node", "TestTern's own fetch");
			assert.deepEqual(session[2]!.changes, { password: "***", role: "viewer" });
			assert.deepEqual(session[3]!.changes, { password: "***", role: "boss" });
			assert.deepEqual(session[4]!.changes, { labels: { site: "lab" } });
			assert.deepEqual(session[7]!.changes, { enabled: false });
			assert.equal(session[8]!.changes, null, "a delete sets nothing");
			assert.equal(session[6]!.changes, null, "a run sets nothing");
			assert.deepEqual(session[11]!.changes, {
				terminalId: "audit-t2",
				payload: `<${JSON.stringify({ big: "x".repeat(4096), apiToken: "***" }).length} bytes>`
			});
			assert.deepEqual(session[12]!.changes, { terminalId: "audit-t2", secrets: "***" });
			assert.equal(session[0]!.changes, null, "a login's password is not a change");
			assert.ok(!JSON.stringify(all).includes("hunter2") && !JSON.stringify(all).includes("vera-password-1"));
		});

		it("reports a terminal touching another terminal's task, and reads refused", async () => {
			// A call between services (no caller from outside) is not written.
			await tern.broker.call("terminals.register", { id: "audit-internal" });
			const other = await tern.registerTerminal("audit-t3");
			const ack = await http("POST", "/api/task/ack", { taskId, attempt: 1 }, other);
			assert.equal(ack.body.type, "TASK_NOT_YOURS", JSON.stringify(ack.body));
			// The same over a socket, where the gateway batches acks and results for the dispatcher.
			const socket = await tern.connectTerminal("audit-t3", other);
			const viaSocket = await socket.request("result", {
				taskId,
				attempt: 1,
				status: "success",
				output: { password: "p" }
			});
			assert.equal(viaSocket?.error?.type ?? viaSocket?.type, "TASK_NOT_YOURS", JSON.stringify(viaSocket));
			assert.equal((await list("", viewerToken)).status, 403);
			assert.equal((await http("POST", "/api/audit/verify", undefined, viewerToken)).status, 403);
			const all = await rows(21);
			const tail = all.slice(-4).map(r => [r.actor, r.actorType, r.action, r.object, r.outcome]);
			assert.deepEqual(tail, [
				["audit-t3", "terminal", "dispatcher.ack", `task:${taskId}`, "TASK_NOT_YOURS"],
				["audit-t3", "terminal", "dispatcher.result", `task:${taskId}`, "TASK_NOT_YOURS"],
				["vera", "user", "audit.list", null, "FORBIDDEN"],
				["vera", "user", "audit.verify", null, "FORBIDDEN"]
			]);
			assert.deepEqual(all[all.length - 3]!.changes, { attempt: 1, status: "success", output: { password: "***" } });
			assert.ok(!all.some(r => r.object === "terminal:audit-internal"), "an internal call is not written");
			// A terminal's own lifecycle reply that is accepted is not written here (its task's history has it).
			assert.ok(!all.some(r => r.action === "dispatcher.ack" && r.outcome === "ok"));
		});

		it("filters by actor, action, object and time, newest first, a page at a time", async () => {
			const vera = await list("?actor=vera");
			assert.deepEqual(
				vera.body.rows.map(r => r.action),
				["audit.verify", "audit.list", "dispatcher.submit", "auth.login"]
			);
			assert.equal(vera.body.total, 4);
			const logins = await list("?action=auth.login&actor=admin");
			assert.equal(logins.body.total, 3);
			assert.deepEqual(
				logins.body.rows.map(r => r.outcome),
				["ok", "BAD_CREDENTIALS", "ok"]
			);
			assert.equal((await list(`?object=job:${jobId}`)).body.total, 3, "run, update, delete");
			const all = (await list("?pageSize=500")).body.rows;
			const page2 = await list("?pageSize=5&page=2");
			assert.equal(page2.body.total, all.length);
			assert.deepEqual(
				page2.body.rows.map(r => r.id),
				all.slice(5, 10).map(r => r.id)
			);
			const middle = all[Math.floor(all.length / 2)]!;
			const since = await list(`?since=${encodeURIComponent(middle.at)}`);
			assert.ok(since.body.rows.every(r => r.at >= middle.at) && since.body.total > 0);
			const until = await list(`?until=${encodeURIComponent(middle.at)}`);
			assert.equal(since.body.total + until.body.total, all.length);
			assert.equal((await list("?since=2000-01-01T00:00:00Z&until=2000-01-02")).body.total, 0);
		});

		it("refuses a bad query, naming the field", async () => {
			for (const [query, field] of [
				["?since=yesterday", "since"],
				["?until=2026-13-45T99:00", "until"],
				["?pageSize=501", "pageSize"],
				["?page=0", "page"],
				["?actor=", "actor"],
				["?colour=red", "colour"],
				["?actor=a%27%20OR%201%3D1", null]
			] as const) {
				const reply = await list(query);
				if (field === null) {
					assert.equal(reply.status, 200, "a quote is a value like any other");
					assert.equal(reply.body.total, 0);
					continue;
				}
				const error = reply.body as unknown as { type: string; message: string };
				assert.equal(reply.status, 422, `${query}: ${JSON.stringify(error)}`);
				assert.equal(error.type, "VALIDATION_ERROR");
				assert.ok(error.message.includes(field), `${query}: ${error.message}`);
			}
		});

		it("verifies an untouched log, and finds an edited, a swapped and a removed row", async () => {
			const total = (await list()).body.total;
			const clean = await verify();
			assert.deepEqual(clean, { ok: true, checked: total, firstBadId: null, reason: null });

			const all = (await list("?pageSize=500")).body.rows.reverse();
			const victim = all[3]!;
			await sql().query("UPDATE audit_log SET actor = 'mallory' WHERE id = ?", { replacements: [victim.id] });
			const edited = await verify();
			assert.equal(edited.ok, false);
			assert.equal(edited.firstBadId, victim.id);
			assert.match(edited.reason ?? "", /changed/);
			await sql().query("UPDATE audit_log SET actor = ? WHERE id = ?", { replacements: [victim.actor, victim.id] });
			assert.equal((await verify()).ok, true, "put back as it was, the row verifies again");

			// Two rows swapped: each now sits at the other's place in the chain.
			const [a, b] = all.slice(5, 7) as [AuditRow, AuditRow];
			const seqOf = async (id: number) =>
				Number(
					(
						(await sql().query("SELECT seq FROM audit_log WHERE id = ?", { replacements: [id], plain: true })) as {
							seq: number;
						}
					).seq
				);
			const [seqA, seqB] = [await seqOf(a.id), await seqOf(b.id)];
			const setSeq = (id: number, seq: number) =>
				sql().query("UPDATE audit_log SET seq = ? WHERE id = ?", { replacements: [seq, id] });
			await setSeq(a.id, -1);
			await setSeq(b.id, seqA);
			await setSeq(a.id, seqB);
			const swapped = await verify();
			assert.equal(swapped.ok, false);
			assert.equal(swapped.firstBadId, b.id, "the row moved up");
			await setSeq(b.id, -1);
			await setSeq(a.id, seqA);
			await setSeq(b.id, seqB);
			assert.equal((await verify()).ok, true);

			const removed = all[8]!;
			const raw = (await sql().query("SELECT * FROM audit_log WHERE id = ?", {
				replacements: [removed.id],
				plain: true
			})) as Record<string, unknown>;
			await sql().query("DELETE FROM audit_log WHERE id = ?", { replacements: [removed.id] });
			const gap = await verify();
			assert.equal(gap.ok, false);
			assert.equal(gap.firstBadId, all[9]!.id, "the row after the gap");
			assert.match(gap.reason ?? "", /missing/);
			const columns = Object.keys(raw);
			await sql().query(
				`INSERT INTO audit_log (${columns.map(c => `\`${c}\``).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
				{
					replacements: columns.map(c => raw[c])
				}
			);
			assert.equal((await verify()).ok, true, "put back, the chain is whole again");
		});

		it("finds rows cut from the end of its own chain", async () => {
			const [last] = (await list("?pageSize=1")).body.rows;
			await sql().query("DELETE FROM audit_log WHERE id = ?", { replacements: [last!.id] });
			const cut = await verify();
			assert.equal(cut.ok, false);
			assert.equal(cut.firstBadId, null);
			assert.match(cut.reason ?? "", /removed from its end/);
		});

		it("keeps calls going while the audit service is away, and writes their rows once it is back", async () => {
			const service = tern.broker.getLocalService("audit")!;
			const settings = { ...service.settings };
			await tern.broker.destroyService(service);
			const started = performance.now();
			const reply = await http("POST", "/api/terminals", { id: "audit-away" });
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			assert.ok(performance.now() - started < 2000, "the call does not wait for the audit log");
			assert.equal((await list()).status, 503, "the audit service is away");
			tern.broker.createService({ ...AuditService, settings: { ...AuditService.settings, ...settings } } as ServiceSchema);
			await tern.broker.waitForServices("audit");
			await waitFor(
				async () => (await list("?object=terminal:audit-away")).body.total === 1,
				10_000,
				() => "the queued row to be written"
			);
			const [row] = (await list("?object=terminal:audit-away")).body.rows;
			assert.deepEqual([row!.actor, row!.action, row!.outcome], ["admin", "terminals.register", "ok"]);
		});

		it("continues the node's chain after a restart with the same node ID", async () => {
			const before = (await list()).body.total;
			tern = await tern.restart();
			await waitFor(
				async () => (await list()).body.total > before,
				5000,
				() => "the new node's first row (its login)"
			);
			const chains = (await sql().query("SELECT DISTINCT chain FROM audit_log", { plain: false })) as unknown as [
				unknown[]
			];
			assert.equal(chains[0].length, 1, "one chain: the node's");
			assert.deepEqual(await verify(), { ok: true, checked: before + 1, firstBadId: null, reason: null });
		});
	});
}
