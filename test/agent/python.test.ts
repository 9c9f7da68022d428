/**
 * The raw-WebSocket protocol as docs/api.md documents it, spoken by the Python example terminals
 * (agent/examples/, standard library only) against a real Tern: terminal.py, the minimal one, and
 * resilient_terminal.py, which reconnects through a proxy that cuts and refuses its connection,
 * sends a result kept while it was away, and runs no task twice, over a restart too.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { TernProxy } from "./helpers.ts";

const EXAMPLE = fileURLToPath(new URL("../../agent/examples/terminal.py", import.meta.url));
const RESILIENT = fileURLToPath(new URL("../../agent/examples/resilient_terminal.py", import.meta.url));
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

describe("the resilient Python example terminal", { skip: python ? false : "python3 is not installed" }, () => {
	let tern: TestTern;
	let proxy: TernProxy;
	let token: string;
	let child: ChildProcess;
	let output = "";
	const dataDir = mkdtempSync(join(tmpdir(), "tern-py-resilient-"));

	function start(): ChildProcess {
		const started = spawn("python3", [RESILIENT], {
			env: { ...process.env, TERN_URL: proxy.url, TERN_TOKEN: token, TERN_DATA_DIR: dataDir },
			stdio: ["ignore", "pipe", "pipe"]
		});
		started.stdout!.on("data", chunk => (output += chunk));
		started.stderr!.on("data", chunk => (output += chunk));
		return started;
	}
	const count = (pattern: RegExp) => output.split("\n").filter(line => pattern.test(line)).length;
	const logged = (pattern: RegExp) =>
		waitFor(
			() => pattern.test(output),
			10_000,
			() => `${pattern} in:\n${output}`
		);

	before(async () => {
		tern = await TestTern.start();
		proxy = await new TernProxy(tern.port).start();
		token = await tern.registerTerminal("py-r");
		child = start();
		await tern.waitForTerminal("py-r", "online", 10_000);
	});
	after(async () => {
		child?.kill("SIGKILL");
		await proxy?.close();
		await tern?.close();
		rmSync(dataDir, { recursive: true, force: true });
	});

	it("reconnects after its connection is cut and refused, and sends the result it kept meanwhile", async () => {
		const taskId = await tern.submit({ terminalId: "py-r", type: "sleep", payload: { seconds: 1 } });
		await logged(new RegExp(`run ${taskId}#1 \\(sleep\\)`));
		proxy.refuseUpgrades = true;
		proxy.dropTunnels();
		await waitFor(
			() => proxy.upgradesRefused >= 2,
			15_000,
			() => `two refused reconnects in:\n${output}`
		);
		assert.match(output, /reconnecting in \d+\.\d s/);
		proxy.refuseUpgrades = false;
		const done = await tern.client.wait(taskId, { timeoutMs: 20_000 });
		assert.equal(done.status, "COMPLETED", output);
		assert.equal(done.data, 1);
		assert.equal(count(new RegExp(`run ${taskId}#`)), 1, output);
		await tern.waitForTerminal("py-r", "online", 10_000);
	});

	it("after a restart, answers FAILED for the task it was running when it was killed, and does not run it again", async () => {
		const taskId = await tern.submit({ terminalId: "py-r", type: "sleep", payload: { seconds: 3 } });
		await logged(new RegExp(`run ${taskId}#1 \\(sleep\\)`));
		child.kill("SIGKILL");
		await tern.waitForTerminal("py-r", "offline", 10_000);
		child = start();
		const final = await tern.client.wait(taskId, { timeoutMs: 20_000 });
		assert.equal(final.status, "FAILED", output);
		assert.equal(final.error, "The terminal stopped while this task ran");
		assert.equal(count(new RegExp(`run ${taskId}#`)), 1, output);
		assert.match(output, new RegExp(`sending the kept result of ${taskId}#1`));
	});
});
