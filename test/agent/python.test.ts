/**
 * The raw-WebSocket protocol as README documents it, spoken by the Python example terminal
 * (agent/examples/terminal.py, standard library only) against a real Tern.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { TestTern } from "../helpers/tern.ts";

const EXAMPLE = fileURLToPath(new URL("../../agent/examples/terminal.py", import.meta.url));
const python = spawnSync("python3", ["--version"]).status === 0;

describe("the Python example terminal", { skip: python ? false : "python3 is not installed" }, () => {
	let tern: TestTern;
	let child: ChildProcess;
	let output = "";

	before(async () => {
		tern = await TestTern.start();
		const token = await tern.registerTerminal("py-1");
		child = spawn("python3", [EXAMPLE], {
			env: { ...process.env, TERN_URL: tern.url, TERN_TOKEN: token },
			stdio: ["ignore", "pipe", "pipe"]
		});
		child.stdout!.on("data", chunk => (output += chunk));
		child.stderr!.on("data", chunk => (output += chunk));
		try {
			await tern.waitForTerminal("py-1", "online", 10_000);
		} catch (err) {
			throw new Error(`${(err as Error).message}\n${output}`, { cause: err });
		}
	});
	after(async () => {
		child?.kill();
		await tern?.close();
	});

	it("connects, takes tasks and answers them over the raw WebSocket", async () => {
		const echo = await tern.submit({ terminalId: "py-1", type: "echo", payload: { hello: "from python" } });
		const done = await tern.waitForStatus(echo, "COMPLETED");
		assert.deepEqual(done.data, { hello: "from python" });
		assert.equal(done.exitCode, 0);

		const sum = await tern.submit({ terminalId: "py-1", type: "sum", payload: { numbers: [1, 2, 3.5] } });
		assert.equal((await tern.waitForStatus(sum, "COMPLETED")).data, 6.5);
		assert.match(output, /connected as py-1/);
	});

	it("answers a task it has no runner for, or one that breaks, with FAILED and stays connected", async () => {
		const missing = await tern.submit({ terminalId: "py-1", type: "command", payload: { argv: ["ls"] } });
		const failed = await tern.waitForStatus(missing, "FAILED");
		assert.equal(failed.error, "Runner 'command' is not available on this terminal");

		const broken = await tern.submit({ terminalId: "py-1", type: "sum", payload: { numbers: "nope" } });
		assert.match((await tern.waitForStatus(broken, "FAILED")).error ?? "", /TypeError/);

		const echo = await tern.submit({ terminalId: "py-1", type: "echo", payload: [1, 2] });
		assert.deepEqual((await tern.waitForStatus(echo, "COMPLETED")).data, [1, 2]);
		assert.equal((await tern.api("GET", "/api/terminals/py-1")).body.status, "online");
	});
});
