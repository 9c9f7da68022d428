/**
 * LOG_FORMAT=json: Tern started as a process writes one JSON object a line, and a line about a
 * terminal carries its id as a field of its own.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import { NodeProcess, freePort } from "../support/node-process.ts";
import { restCall } from "../support/rest.ts";
import { waitFor } from "../support/wait.ts";

describe("LOG_FORMAT=json", () => {
	let node: NodeProcess;
	let dir: string;

	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "tern-logs-"));
		const env: NodeJS.ProcessEnv = {
			...process.env,
			TERN_DATA_DIR: dir,
			TERN_ADMIN_PASSWORD: "pw-for-logs",
			LOG_FORMAT: "json",
			LOGLEVEL: "info"
		};
		delete env.TRANSPORTER;
		delete env.DB_URI;
		node = new NodeProcess({ id: "json-logs", services: ["all"] }, await freePort(), await freePort(), env);
		node.start();
		await node.waitReady();
	});

	after(async () => {
		await node?.stop();
		if (dir) rmSync(dir, { recursive: true, force: true });
	});

	it("writes JSON lines, with terminalId a field where a line is about a terminal", async () => {
		const login = await restCall<{ token: string }>(`${node.url}/api/auth/login`, "POST", {
			username: "admin",
			password: "pw-for-logs"
		});
		const reg = await restCall<{ token: string }>(`${node.url}/api/terminals`, "POST", { id: "log-t1" }, login.body.token);
		assert.equal(reg.status, 201);
		const socket = io(`${node.url}/terminal`, {
			auth: { token: reg.body.token },
			transports: ["websocket"],
			reconnection: false
		});
		try {
			await waitFor(
				() => node.output.some(line => line.includes('"terminalId":"log-t1"')),
				10_000,
				() => `a log line about log-t1:\n${node.output.slice(-10).join("\n")}`
			);
		} finally {
			socket.close();
		}
		// The health port serves this node's metrics too.
		const metrics = await fetch(`http://127.0.0.1:${node.healthPort}/metrics`);
		assert.equal(metrics.status, 200);
		assert.match(await metrics.text(), /tern_terminal_connects_total\{[^}]*transport="socketio"[^}]*\} 1/);
		const lines = node.output.filter(line => !line.startsWith("-- exited"));
		assert.ok(lines.length > 5);
		for (const line of lines) {
			const parsed = JSON.parse(line) as Record<string, unknown>;
			assert.equal(typeof parsed.msg, "string", line);
			assert.equal(typeof parsed.level, "string", line);
			assert.equal(parsed.nodeID, "json-logs", line);
		}
		const connected = lines.map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.terminalId === "log-t1")!;
		assert.match(String(connected.msg), /connected/);
		assert.equal(connected.mod, "gateway");
	});
});
