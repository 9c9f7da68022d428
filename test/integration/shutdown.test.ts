/**
 * Graceful stop of a real Tern process: on SIGTERM the gateway tells its terminals to reconnect
 * (elsewhere, in a cluster) before it closes them, and the process exits cleanly.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { freePort } from "../support/node-process.ts";
import { until, waitFor } from "../support/wait.ts";

describe("graceful stop", () => {
	const dataDir = mkdtempSync(join(tmpdir(), "tern-stop-"));
	let child: ChildProcess | null = null;
	after(() => {
		child?.kill("SIGKILL");
		rmSync(dataDir, { recursive: true, force: true });
	});

	it("tells socket.io and WebSocket terminals to reconnect, then exits 0 on SIGTERM", async () => {
		const port = await freePort();
		child = spawn(process.execPath, ["tern.ts"], {
			env: {
				...process.env,
				NODE_TEST_CONTEXT: "",
				PORT: String(port),
				TERN_DATA_DIR: dataDir,
				TERN_ADMIN_PASSWORD: "stop-test-pass",
				LOGLEVEL: "warn"
			},
			stdio: ["ignore", "pipe", "pipe"]
		});
		const exited = new Promise<number | null>(resolve => child!.once("exit", code => resolve(code)));
		const url = `http://127.0.0.1:${port}`;
		let token = "";
		await waitFor(
			async () => {
				const res = await fetch(`${url}/api/auth/login`, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: JSON.stringify({ username: "admin", password: "stop-test-pass" })
				}).catch(() => null);
				if (!res?.ok) return false;
				token = ((await res.json()) as { token: string }).token;
				return true;
			},
			20_000,
			() => "Tern to answer"
		);
		const register = async (id: string) => {
			const res = await fetch(`${url}/api/terminals`, {
				method: "POST",
				headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
				body: JSON.stringify({ id })
			});
			return ((await res.json()) as { token: string }).token;
		};

		const socket = io(`${url}/terminal`, {
			auth: { token: await register("stop-io") },
			transports: ["websocket"],
			reconnection: false
		});
		const told: string[] = [];
		socket.on("reconnect", (msg: { reason: string }) => told.push(`io:${msg.reason}`));
		await new Promise<void>(resolve => socket.once("connect", () => resolve()));
		const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/terminal/stop-ws?token=${await register("stop-ws")}`);
		ws.on("message", data => {
			const msg = JSON.parse(data.toString()) as { type: string; reason?: string };
			if (msg.type === "reconnect") told.push(`ws:${msg.reason}`);
		});
		await new Promise<void>(resolve => ws.once("open", () => resolve()));

		child.kill("SIGTERM");
		assert.equal(await exited, 0, "a clean exit");
		child = null;
		await until([socket, ws], ["reconnect", "message"], () => told.length === 2);
		assert.deepEqual(told.sort(), ["io:gateway shutting down", "ws:gateway shutting down"]);
		socket.close();
	});
});
