/**
 * A crash while degraded loses nothing that was acknowledged. A Tern process (`node tern.ts`,
 * embedded, on MariaDB through a TCP proxy) loses its database; tasks are submitted (201) and
 * run to COMPLETED on a terminal; the process is killed with SIGKILL before the database is
 * back. With the database restored and the process started again on the same data dir, the
 * journal is replayed at start: every task is in the database, COMPLETED, exactly once.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { TestTerminal } from "../helpers/tern.ts";
import { TestDatabase, MYSQL_SERVER } from "../helpers/mysql.ts";
import { freePort, NodeProcess } from "../support/node-process.ts";
import { Rest } from "../support/rest.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import { waitFor } from "../support/wait.ts";
import type { SystemStatus } from "../../lib/contracts.ts";
import { needs } from "../support/servers.ts";

const PASSWORD = "crash-test-password-1";

describe("a crash while degraded", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;
	let proxy: TcpProxy;
	let node: NodeProcess;
	let dataDir: string;
	let terminal: TestTerminal | undefined;

	before(async () => {
		db = await TestDatabase.create("tern_crash");
		const server = new URL(MYSQL_SERVER);
		proxy = await TcpProxy.start(server.hostname, Number(server.port || 3306));
		dataDir = mkdtempSync(join(tmpdir(), "tern-crash-"));
		const env: NodeJS.ProcessEnv = { ...process.env };
		delete env.NODE_TEST_CONTEXT;
		Object.assign(env, {
			TRANSPORTER: "none",
			DB_URI: `mysql://${server.username || "root"}@127.0.0.1:${proxy.port}/${db.name}`,
			TERN_DATA_DIR: dataDir,
			TERN_ADMIN_PASSWORD: PASSWORD,
			TERN_DB_DEADLINE_MS: "1000",
			JWT_SECRET: randomBytes(32).toString("base64url"),
			LOGLEVEL: "warn"
		});
		node = new NodeProcess({ id: "crash-1", services: ["all"] }, await freePort(), await freePort(), env);
		node.start();
		await node.waitReady();
	});

	after(async () => {
		terminal?.close();
		await node?.stop();
		await proxy?.close();
		await db?.drop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	it("replays at start what was acknowledged before the kill, each change once", async () => {
		const rest = new Rest(node.url);
		await rest.login("admin", PASSWORD);
		const token = await rest.registerTerminal("crash-edge");
		terminal = new TestTerminal("crash-edge", io(`${node.url}/terminal`, { auth: { token }, transports: ["websocket"] }));
		await new Promise<void>((resolve, reject) => {
			terminal!.socket.once("connect", resolve);
			terminal!.socket.once("connect_error", reject);
		});

		proxy.cut();
		const ids: string[] = [];
		for (let i = 0; i < 20; i++) {
			const reply = await rest.call<{ taskId: string }>("POST", "/api/task/submit", {
				terminalId: "crash-edge",
				type: "echo",
				payload: { i }
			});
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			ids.push(reply.body.taskId);
		}
		for (let i = 0; i < 20; i++) {
			const task = await terminal.nextTask(10_000);
			assert.equal((await terminal.ack(task)).ok, true);
			assert.equal((await terminal.result(task, "success", { i })).ok, true);
		}
		const status = (await rest.call<SystemStatus>("GET", "/api/system/status")).body;
		assert.equal(status.degraded, true);
		const journalled = status.storage[0].journalled;
		assert.ok(journalled >= 60, `journalled ${journalled}`);
		// Nothing reached the database.
		assert.equal((await db.query("SELECT id FROM tasks WHERE id IN (?)", [ids])).length, 0);

		terminal.close();
		await node.kill();
		proxy.restore();
		node.start();
		await node.waitReady();

		const rows = await db.query<{ id: string; status: string; attempt: number; history: string }>(
			"SELECT id, status, attempt, history FROM tasks WHERE id IN (?)",
			[ids]
		);
		assert.equal(rows.length, 20, "every acknowledged submit is in the database");
		for (const row of rows) {
			assert.equal(row.status, "COMPLETED", row.id);
			assert.equal(row.attempt, 1, row.id);
			const states = row.history
				.trim()
				.split("\n")
				.map(line => JSON.parse(line).s as string);
			assert.deepEqual(
				states.filter(s => s !== "PENDING"),
				["DELIVERED", "PROCESSING", "COMPLETED"],
				`${row.id}: each change once (${states.join(" → ")})`
			);
		}
		const after = new Rest(node.url);
		await after.login("admin", PASSWORD);
		await waitFor(
			async () => (await after.countTasks({ status: "COMPLETED" })) === 20,
			5000,
			() => "the list to show 20"
		);
		const storage = (await after.call<SystemStatus>("GET", "/api/system/status")).body.storage[0];
		assert.equal(storage.degraded, false);
		assert.equal(storage.lastReplay?.records, journalled);
		assert.equal(storage.lastReplay?.applied, journalled);
	});
});
