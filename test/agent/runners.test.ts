/**
 * The agent's runners, each run by the real agent process against a real Tern: command, script
 * (inline, named and versioned, hot-updated), http, docker (a CLI without an engine, and a stand-in
 * CLI with one) — and the bad input each must turn into a FAILED task with a clear error while the agent
 * stays healthy.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { AgentProcess, disposeAgents } from "./helpers.ts";

describe("agent runners", () => {
	let tern: TestTern;
	let agent: AgentProcess;
	let echo: Server;
	let echoUrl: string;
	const tmp = mkdtempSync(join(tmpdir(), "tern-agent-runners-"));

	before(async () => {
		tern = await TestTern.start();
		const token = await tern.registerTerminal("runner-1", { labels: { pool: "runners" } });
		// A docker CLI without an engine, first on its PATH, whatever this machine has installed.
		const noEngine = join(tmp, "no-engine");
		mkdirSync(noEngine);
		writeFileSync(join(noEngine, "docker"), "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n");
		chmodSync(join(noEngine, "docker"), 0o755);
		agent = await AgentProcess.start(tern, "runner-1", token, {
			args: ["--allow-commands", "echo,cat,sh,false", "--allow-hosts", "127.0.0.1", "--concurrency", "3"],
			// Also in its environment, to show that tasks do not inherit them.
			env: { TERN_TOKEN: token, TERN_URL: tern.url, PATH: `${noEngine}:${process.env.PATH}` }
		});
		echo = http.createServer((req, res) => {
			let body = "";
			req.on("data", chunk => (body += chunk));
			req.on("end", () => {
				const status = req.url === "/missing" ? 404 : 200;
				res.writeHead(status, { "content-type": "application/json", "x-echo": "yes" });
				res.end(JSON.stringify({ method: req.method, url: req.url, header: req.headers["x-test"] ?? null, body }));
			});
		});
		await new Promise<void>(resolve => echo.listen(0, "127.0.0.1", resolve));
		echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
	});
	after(async () => {
		await disposeAgents();
		echo?.close();
		await tern?.close();
		rmSync(tmp, { recursive: true, force: true });
	});

	/** Submits a task pinned to the agent's terminal and waits for its final status. */
	async function run(type: string, payload: unknown, status: "COMPLETED" | "FAILED", extra: Record<string, unknown> = {}) {
		const taskId = await tern.submit({ terminalId: "runner-1", type, payload, ...extra });
		try {
			return { taskId, view: await tern.waitForStatus(taskId, status, 15_000) };
		} catch (err) {
			throw new Error(`${(err as Error).message}\nagent output:\n${agent.output.slice(-3000)}`, { cause: err });
		}
	}

	it("advertises the runners it has: command, script and http, not docker (no engine answers)", async () => {
		const line = await agent.waitForLog(/runners ([a-z, ]+), concurrency 3/);
		assert.deepEqual(line[1].split(", ").sort(), ["command", "http", "script"]);
		assert.match(agent.output, /Runner 'docker' is not available here: no Docker engine answers/);
	});

	it("command: runs argv without a shell and reports exitCode, stdout and stderr", async () => {
		const { view } = await run("command", { argv: ["echo", "hello", "$HOME", "; rm -rf /"] }, "COMPLETED");
		const output = view.data as { exitCode: number; stdout: string; stderr: string };
		assert.equal(output.exitCode, 0);
		assert.equal(output.stdout, "hello $HOME ; rm -rf /\n", "arguments are not interpreted by a shell");
		assert.equal(output.stderr, "");
		assert.equal(view.exitCode, 0);
	});

	it("command: passes stdin, env and cwd", async () => {
		const { view } = await run(
			"command",
			{
				argv: ["sh", "-c", 'cat; echo "$GREETING from $(pwd)"; echo oops >&2'],
				stdin: "piped in\n",
				env: { GREETING: "hi" },
				cwd: tmp
			},
			"COMPLETED"
		);
		const output = view.data as { stdout: string; stderr: string };
		assert.equal(output.stdout, `piped in\nhi from ${tmp}\n`);
		assert.equal(output.stderr, "oops\n");
	});

	it("command: a non-zero exit is FAILED with the exit code and the last stderr line", async () => {
		const { view } = await run("command", { argv: ["sh", "-c", "echo bad thing >&2; exit 3"] }, "FAILED");
		assert.equal(view.exitCode, 3);
		assert.match(view.error ?? "", /exited with code 3: bad thing/);
		assert.equal((view.data as { exitCode: number }).exitCode, 3);
	});

	it("command: keeps only the last --output-limit bytes of each stream", async () => {
		const { view } = await run(
			"command",
			{ argv: ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"] },
			"COMPLETED"
		);
		const output = view.data as { stdout: string; truncated: boolean; stdoutBytes: number };
		assert.equal(output.truncated, true);
		assert.ok(output.stdout.length <= 65_536, `stdout kept ${output.stdout.length} bytes`);
		assert.ok(output.stdout.endsWith("line19999\n"));
		assert.ok(output.stdoutBytes > 65_536);
	});

	it("bad input: a command not on the allowlist is FAILED, nothing runs, and the agent goes on", async () => {
		const marker = join(tmp, "should-not-exist");
		const { view } = await run("command", { argv: ["touch", marker] }, "FAILED");
		assert.match(view.error ?? "", /Command 'touch' is not allowed on this terminal: it is not on the agent's allowlist/);
		const { view: ok } = await run("command", { argv: ["echo", "still here"] }, "COMPLETED");
		assert.equal((ok.data as { stdout: string }).stdout, "still here\n");
	});

	it("bad input: a malformed command payload is FAILED naming the field", async () => {
		const { view } = await run("command", { argv: "echo hi" }, "FAILED");
		assert.match(view.error ?? "", /'argv' must be an array of strings/);
		const { view: missing } = await run("command", { argv: ["no-such-program-xyz"] }, "FAILED");
		assert.match(missing.error ?? "", /not allowed/);
	});

	it("script: runs an inline body with its interpreter and arguments", async () => {
		const { view } = await run(
			"script",
			{ interpreter: "python3", body: "import sys\nprint('py', sys.argv[1:])\n", args: ["a", "b"] },
			"COMPLETED"
		);
		assert.equal((view.data as { stdout: string }).stdout, "py ['a', 'b']\n");
		const { view: node } = await run(
			"script",
			{ interpreter: "node", body: "console.log(process.env.WHO)", env: { WHO: "node" } },
			"COMPLETED"
		);
		assert.equal((node.data as { stdout: string }).stdout, "node\n");
	});

	it("script: runs a named version stored in Tern, and a new version is used by the next task without a restart (hot update)", async () => {
		const v1 = await tern.api("POST", "/api/scripts", {
			name: "greet",
			interpreter: "sh",
			body: 'echo "v1 says hello to $1"'
		});
		assert.equal(v1.status, 201, JSON.stringify(v1.body));
		const first = await run("script", { script: "greet", args: ["ann"] }, "COMPLETED");
		assert.equal((first.view.data as { stdout: string }).stdout, "v1 says hello to ann\n");
		assert.deepEqual((first.view.data as { script: unknown }).script, { name: "greet", version: 1, sha256: v1.body.sha256 });

		const v2 = await tern.api("POST", "/api/scripts", {
			name: "greet",
			interpreter: "bash",
			body: 'echo "v2 (${BASH_VERSINFO[0]}) greets $1"'
		});
		assert.equal(v2.body.version, 2);
		const second = await run("script", { script: "greet", args: ["bob"] }, "COMPLETED");
		assert.match((second.view.data as { stdout: string }).stdout, /^v2 \(\d+\) greets bob\n$/);
		const pinned = await run("script", { script: "greet@1", args: ["cy"] }, "COMPLETED");
		assert.equal((pinned.view.data as { stdout: string }).stdout, "v1 says hello to cy\n");
		const pinned2 = await run("script", { script: "greet@2", args: ["di"] }, "COMPLETED");
		assert.match((pinned2.view.data as { stdout: string }).stdout, /greets di/);
		assert.ok(agent.running, "the same agent process ran every version");
	});

	it("bad input: a script version that does not exist is FAILED with a clear error", async () => {
		const { view } = await run("script", { script: "greet@99" }, "FAILED");
		assert.match(view.error ?? "", /Script 'greet@99' does not exist in Tern/);
		const { view: unknown } = await run("script", { script: "nobody-wrote-this" }, "FAILED");
		assert.match(unknown.error ?? "", /Script 'nobody-wrote-this' does not exist in Tern/);
		const { view: bad } = await run("script", { script: "greet@latest" }, "FAILED");
		assert.match(bad.error ?? "", /'script' must be 'name' or 'name@version'/);
		const { view: interp } = await run("script", { interpreter: "perl", body: "print 1" }, "FAILED");
		assert.match(interp.error ?? "", /Interpreter 'perl' is not supported/);
	});

	it("http: makes the request and reports status, headers and body", async () => {
		const { view } = await run(
			"http",
			{ method: "POST", url: `${echoUrl}/hook?x=1`, headers: { "x-test": "42" }, body: { hello: "world" } },
			"COMPLETED"
		);
		const output = view.data as { status: number; headers: Record<string, string>; body: string };
		assert.equal(output.status, 200);
		assert.equal(output.headers["x-echo"], "yes");
		assert.deepEqual(JSON.parse(output.body), { method: "POST", url: "/hook?x=1", header: "42", body: '{"hello":"world"}' });
	});

	it("http: a 4xx/5xx answer is FAILED with the status", async () => {
		const { view } = await run("http", { method: "GET", url: `${echoUrl}/missing` }, "FAILED");
		assert.match(view.error ?? "", /HTTP 404 Not Found/);
		assert.equal((view.data as { status: number }).status, 404);
	});

	it("bad input: an http target not on the host allowlist, or a metadata address, is FAILED without a request", async () => {
		const { view } = await run("http", { method: "GET", url: "http://example.com/" }, "FAILED");
		assert.match(view.error ?? "", /HTTP target 'example.com' is not allowed on this terminal/);
		const { view: metadata } = await run(
			"http",
			{ method: "GET", url: "http://169.254.169.254/latest/meta-data/" },
			"FAILED"
		);
		assert.match(metadata.error ?? "", /link-local\/metadata address: not allowed/);
		const { view: v6 } = await run("http", { method: "GET", url: "http://[fe80::1]:8080/" }, "FAILED");
		assert.match(v6.error ?? "", /link-local\/metadata address/);
		const { view: scheme } = await run("http", { method: "GET", url: "file:///etc/passwd" }, "FAILED");
		assert.match(scheme.error ?? "", /must be http:\/\/ or https:\/\//);
	});

	it("bad input: a task for a runner the agent lacks is FAILED: runner '<type>' is not available on this terminal", async () => {
		const { view } = await run("docker", { image: "alpine:3.20", args: ["echo", "hi"] }, "FAILED");
		assert.match(view.error ?? "", /Runner 'docker' is not available on this terminal/);
		const { view: print } = await run("print", { doc: 1 }, "FAILED");
		assert.match(print.error ?? "", /Runner 'print' is not available on this terminal/);
		const { view: ok } = await run("command", { argv: ["echo", "fine"] }, "COMPLETED");
		assert.equal((ok.data as { stdout: string }).stdout, "fine\n");
	});

	it("runs at most --concurrency tasks at once", async () => {
		const log = join(tmp, "overlap.log");
		const script = `echo start >> ${log}; sleep 0.3; echo end >> ${log}`;
		const ids = await Promise.all(
			Array.from({ length: 7 }, () =>
				tern.submit({ terminalId: "runner-1", type: "command", payload: { argv: ["sh", "-c", script] } })
			)
		);
		for (const id of ids) await tern.waitForStatus(id, "COMPLETED", 15_000);
		const { readFileSync } = await import("node:fs");
		let running = 0;
		let most = 0;
		for (const line of readFileSync(log, "utf8").trim().split("\n")) {
			running += line === "start" ? 1 : -1;
			most = Math.max(most, running);
		}
		assert.ok(most <= 3, `at most 3 ran together, saw ${most}`);
		assert.ok(most >= 2, `tasks did run side by side (saw ${most})`);
	});

	it("docker: with an engine (a stand-in docker CLI here) the capability is advertised and the container runs", async () => {
		const bin = mkdtempSync(join(tmpdir(), "fake-docker-"));
		const fake = join(bin, "docker");
		writeFileSync(
			fake,
			[
				"#!/bin/sh",
				'if [ "$1" = version ]; then echo 27.0.0; exit 0; fi',
				'if [ "$1" = run ]; then shift; name=""; while [ $# -gt 0 ]; do case "$1" in',
				"  --rm) shift;; --name) name=$2; shift 2;; --label|--memory) shift 2;; -e) shift 2;;",
				"  *) break;; esac; done",
				'  image=$1; shift; echo "ran $image in $name with GREETING=$GREETING: $*"; exit 0; fi',
				"exit 1"
			].join("\n")
		);
		chmodSync(fake, 0o755);
		const token = await tern.registerTerminal("docker-1");
		const docker = await AgentProcess.start(tern, "docker-1", token, { env: { PATH: `${bin}:${process.env.PATH}` } });
		await docker.waitForLog(/runners [a-z, ]*docker/);
		const taskId = await tern.submit({
			terminalId: "docker-1",
			type: "docker",
			payload: { image: "alpine:3.20", args: ["echo", "hi"], env: { GREETING: "hey" } }
		});
		const view = await tern.waitForStatus(taskId, "COMPLETED", 15_000);
		const output = view.data as { stdout: string; image: string };
		assert.equal(output.stdout, `ran alpine:3.20 in tern-${taskId}-1 with GREETING=hey: echo hi\n`);
		await docker.stop();
		rmSync(bin, { recursive: true, force: true });
	});

	it("gives tasks the task's identity in the environment, never the agent's token", async () => {
		const { taskId, view } = await run(
			"command",
			{ argv: ["sh", "-c", 'echo "$TERN_TASK_ID $TERN_TASK_ATTEMPT ${TERN_TOKEN:-no-token} ${TERN_URL:-no-url}"'] },
			"COMPLETED"
		);
		assert.equal((view.data as { stdout: string }).stdout, `${taskId} 1 no-token no-url\n`);
	});

	it("starts task processes under the configured resource limits", async () => {
		const token = await tern.registerTerminal("limited-1");
		const limited = await AgentProcess.start(tern, "limited-1", token, {
			args: ["--allow-commands", "python3,sh", "--limit-memory", "256", "--limit-fsize", "1"],
			env: { TERN_TOKEN: token }
		});
		const big = await tern.submit({
			terminalId: "limited-1",
			type: "command",
			payload: { argv: ["python3", "-c", "b = bytearray(512 * 1024 * 1024); print('allocated')"] }
		});
		const memory = await tern.waitForStatus(big, "FAILED", 15_000);
		assert.match((memory.data as { stderr: string }).stderr, /MemoryError/);
		const small = await tern.submit({
			terminalId: "limited-1",
			type: "command",
			payload: { argv: ["python3", "-c", "b = bytearray(16 * 1024 * 1024); print('allocated')"] }
		});
		assert.equal(((await tern.waitForStatus(small, "COMPLETED", 15_000)).data as { stdout: string }).stdout, "allocated\n");
		const file = join(tmp, "big-file");
		const write = await tern.submit({
			terminalId: "limited-1",
			type: "command",
			payload: { argv: ["sh", "-c", `head -c 3000000 /dev/zero > ${file}`] }
		});
		const fsize = await tern.waitForStatus(write, "FAILED", 15_000);
		assert.match(fsize.error ?? "", /SIGXFSZ|File size limit|exited with code/);
		await limited.stop();
	});

	it("is still healthy after all of that", async () => {
		assert.ok(agent.running);
		await tern.waitForTerminal("runner-1", "online");
		const { view } = await run("command", { argv: ["echo", "ok"] }, "COMPLETED");
		assert.equal((view.data as { stdout: string }).stdout, "ok\n");
		await waitFor(() => true);
	});
});
