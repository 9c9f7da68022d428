/**
 * The agent's pieces on their own: configuration, the runner index, allowlists and blocked
 * addresses, the ledger on disk, backoff, output buffers and the live-log pump.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TailBuffer, withLimits } from "../../agent/runners/base.ts";
import { commandAllowed } from "../../agent/runners/command.ts";
import { hostAllowed, isBlockedAddress } from "../../agent/runners/http.ts";
import { resolve, UnknownRunnerError } from "../../agent/runners/index.ts";
import { Backoff } from "../../agent/sdk/backoff.ts";
import { ConfigError, loadConfig, tokenSubject } from "../../agent/sdk/config.ts";
import { Ledger, lockDataDir } from "../../agent/sdk/ledger.ts";
import { LogPump } from "../../agent/sdk/logs.ts";
import { TernError } from "../../agent/sdk/rest.ts";
import { parseScriptRef } from "../../agent/sdk/scripts.ts";
import { CLI } from "./helpers.ts";

/** A JWT-shaped token for `sub` (unsigned: the agent only reads the subject; Tern verifies). */
function tokenFor(sub: string): string {
	const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
	return `${part({ alg: "HS256" })}.${part({ sub, kind: "terminal" })}.sig`;
}

describe("agent configuration", () => {
	it("reads options from the command line, then the environment, then a config file", () => {
		const dir = mkdtempSync(join(tmpdir(), "tern-agent-config-"));
		const file = join(dir, "agent.json");
		writeFileSync(
			file,
			JSON.stringify({ concurrency: 7, allowCommands: ["uptime", "df"], labels: "site=lab", heartbeat: 10 })
		);
		const { config } = loadConfig(["--url", "http://tern:3000/", "--config", file, "--heartbeat", "5"], {
			TERN_TOKEN: tokenFor("dev-1"),
			TERN_CONCURRENCY: "3"
		});
		assert.equal(config!.url, "http://tern:3000");
		assert.equal(config!.socketUrl, "http://tern:3000");
		assert.equal(config!.terminalId, "dev-1");
		assert.equal(config!.concurrency, 3, "the environment beats the file");
		assert.equal(config!.heartbeatMs, 5000, "the command line beats the file");
		assert.deepEqual(config!.allowCommands, ["uptime", "df"]);
		assert.deepEqual(config!.labels, { site: "lab" });
		assert.equal(config!.transport, "auto");
		assert.match(config!.dataDir, /\.tern-agent\/dev-1$/);
		rmSync(dir, { recursive: true, force: true });
	});

	it("defaults to 30 s heartbeats, no allowed commands or hosts, and every runner", () => {
		const { config } = loadConfig(["--url", "https://tern.example.com", "--token", tokenFor("t")], {});
		assert.equal(config!.heartbeatMs, 30_000);
		assert.deepEqual(config!.allowCommands, []);
		assert.deepEqual(config!.allowHosts, []);
		assert.equal(config!.runners, null);
		assert.equal(config!.allowLinkLocal, false);
	});

	it("refuses missing and malformed options with a message naming the option", () => {
		const fail = (args: string[], env: NodeJS.ProcessEnv, pattern: RegExp) =>
			assert.throws(
				() => loadConfig(args, env),
				(err: Error) => err instanceof ConfigError && pattern.test(err.message)
			);
		fail([], {}, /--url \(or TERN_URL\) is required/);
		fail(["--url", "http://x"], {}, /--token \(or TERN_TOKEN, or --token-file\) is required/);
		fail(["--url", "ftp://x", "--token", tokenFor("a")], {}, /--url must be an http/);
		fail(
			["--url", "http://x", "--token", tokenFor("a"), "--concurrency", "0"],
			{},
			/--concurrency must be an integer from 1 to 10000/
		);
		fail(["--url", "http://x", "--token", tokenFor("a")], { TERN_HEARTBEAT: "soon" }, /TERN_HEARTBEAT must be a number/);
		fail(
			["--url", "http://x", "--token", tokenFor("a"), "--terminal-id", "b"],
			{},
			/does not match the token, which is for 'a'/
		);
		fail(
			["--url", "http://x", "--token", tokenFor("a"), "--transport", "carrier-pigeon"],
			{},
			/--transport must be auto, socket or pull/
		);
		fail(["--url", "http://x", "--token", tokenFor("a"), "--frobnicate"], {}, /Unknown option '--frobnicate'/);
		fail(["--url", "http://x", "--token", "not-a-jwt"], {}, /carries no terminal id/);
		const dir = mkdtempSync(join(tmpdir(), "tern-agent-config-"));
		writeFileSync(join(dir, "bad.json"), JSON.stringify({ allowCommand: "*" }));
		fail(
			["--url", "http://x", "--token", tokenFor("a"), "--config", join(dir, "bad.json")],
			{},
			/unknown option 'allowCommand'/
		);
		rmSync(dir, { recursive: true, force: true });
	});

	it("reads a JWT's subject without verifying it", () => {
		assert.equal(tokenSubject(tokenFor("printer-1")), "printer-1");
		assert.equal(tokenSubject("garbage"), null);
	});
});

describe("runner index", () => {
	it("resolves each runner by name and refuses unknown names", () => {
		for (const name of ["command", "script", "http", "docker"]) assert.equal(resolve(name).name, name);
		assert.throws(() => resolve("shell"), UnknownRunnerError);
		assert.throws(() => resolve("toString"), /Unknown runner 'toString': the runners are command, script, http, docker/);
	});

	it("stops the CLI at start-up, before connecting, when --runners names an unknown runner", () => {
		const result = spawnSync(
			process.execPath,
			[CLI, "--url", "http://127.0.0.1:9", "--token", tokenFor("x"), "--runners", "command,shell"],
			{
				encoding: "utf8",
				timeout: 20_000
			}
		);
		assert.equal(result.status, 2, result.stderr);
		assert.match(result.stderr, /--runners: Unknown runner 'shell'/);
	});

	it("answers --help and refuses bad options with exit code 2", () => {
		const help = spawnSync(process.execPath, [CLI, "--help"], { encoding: "utf8", timeout: 20_000 });
		assert.equal(help.status, 0);
		assert.match(help.stdout, /--allow-commands/);
		const bad = spawnSync(process.execPath, [CLI, "--url", "http://x"], {
			encoding: "utf8",
			timeout: 20_000,
			env: { PATH: process.env.PATH }
		});
		assert.equal(bad.status, 2);
		assert.match(bad.stderr, /--token \(or TERN_TOKEN/);
	});
});

describe("allowlists and blocked addresses", () => {
	it("allows a command only when listed exactly, or with '*'", () => {
		assert.ok(commandAllowed("uptime", ["uptime", "df"]));
		assert.ok(!commandAllowed("/usr/bin/uptime", ["uptime"]), "a path is not its basename");
		assert.ok(!commandAllowed("rm", []));
		assert.ok(commandAllowed("anything", ["*"]));
	});

	it("matches hosts, host:port, *.domain and '*'", () => {
		assert.ok(hostAllowed("api.example.com", 443, ["api.example.com"]));
		assert.ok(hostAllowed("API.example.com", 443, ["api.example.com"]));
		assert.ok(!hostAllowed("example.com", 443, ["api.example.com"]));
		assert.ok(hostAllowed("a.b.example.com", 80, ["*.example.com"]));
		assert.ok(!hostAllowed("example.com.evil.io", 80, ["*.example.com"]));
		assert.ok(hostAllowed("127.0.0.1", 8080, ["127.0.0.1:8080"]));
		assert.ok(!hostAllowed("127.0.0.1", 8081, ["127.0.0.1:8080"]));
		assert.ok(hostAllowed("::1", 3000, ["[::1]:3000"]));
		assert.ok(hostAllowed("anything.at.all", 1, ["*"]));
		assert.ok(!hostAllowed("x", 1, []));
	});

	it("blocks link-local and cloud-metadata addresses, in every spelling", () => {
		for (const ip of [
			"169.254.169.254",
			"169.254.0.1",
			"::ffff:169.254.169.254",
			"fe80::1",
			"[fe80::abcd]",
			"fd00:ec2::254",
			"100.100.100.200",
			"168.63.129.16"
		])
			assert.ok(isBlockedAddress(ip), ip);
		for (const ip of ["127.0.0.1", "10.0.0.1", "8.8.8.8", "::1", "2001:db8::1", "169.255.0.1", "example.com"])
			assert.ok(!isBlockedAddress(ip), ip);
	});
});

describe("ledger", () => {
	const entry = (taskId: string, attempt: number, state: "received" | "running" | "done" | "sent") => ({
		taskId,
		attempt,
		type: "command",
		state,
		receivedAt: Date.now(),
		at: Date.now()
	});

	it("remembers (taskId, attempt) across reopening, holds results until sent, and tolerates a torn last line", () => {
		const dir = mkdtempSync(join(tmpdir(), "tern-ledger-"));
		const ledger = new Ledger(dir);
		ledger.put(entry("a", 1, "running"));
		ledger.put({ ...entry("a", 1, "done"), result: { taskId: "a", attempt: 1, status: "success", output: 42 } });
		ledger.put(entry("b", 1, "running"));
		ledger.put(entry("c", 2, "sent"));
		ledger.close();
		appendFileSync(join(dir, "ledger.jsonl"), '{"taskId":"d","attem');

		const again = new Ledger(dir);
		assert.equal(again.get("a", 1)?.state, "done");
		assert.deepEqual(
			again.outbox().map(e => e.result?.output),
			[42]
		);
		assert.deepEqual(again.leftOver.map(e => `${e.taskId}:${e.state}`).sort(), ["a:done", "b:running"]);
		assert.equal(again.get("c", 2)?.state, "sent");
		assert.equal(again.latest("c")?.attempt, 2);
		assert.equal(again.get("d", 1), undefined);
		assert.doesNotMatch(readFileSync(join(dir, "ledger.jsonl"), "utf8"), /"attem$/, "compacted on open");
		again.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("forgets final entries past the retention and compacts as it grows", () => {
		const dir = mkdtempSync(join(tmpdir(), "tern-ledger-"));
		const ledger = new Ledger(dir, { retentionMs: 60_000, maxEntries: 100 });
		for (let i = 0; i < 1500; i++) ledger.put(entry(`t${i}`, 1, i % 2 ? "sent" : "running"));
		ledger.put({ ...entry("held", 1, "done"), result: { taskId: "held", attempt: 1, status: "failed", error: "x" } });
		ledger.compact(Date.now() + 120_000);
		assert.equal(ledger.get("t1", 1), undefined, "a sent entry past the retention is gone");
		assert.equal(ledger.get("t0", 1)?.state, "running", "live entries stay");
		assert.equal(ledger.outbox().length, 1, "held results stay");
		const lines = readFileSync(join(dir, "ledger.jsonl"), "utf8").trim().split("\n").length;
		assert.equal(lines, 751);
		ledger.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("lets one agent at a time use a data dir", () => {
		const dir = mkdtempSync(join(tmpdir(), "tern-ledger-"));
		writeFileSync(join(dir, "agent.lock"), "1");
		assert.throws(() => lockDataDir(dir), /Another agent \(pid 1\) is using the data dir/);
		writeFileSync(join(dir, "agent.lock"), "999999999");
		const unlock = lockDataDir(dir);
		assert.equal(readFileSync(join(dir, "agent.lock"), "utf8"), String(process.pid), "a stale lock is taken over");
		unlock();
		rmSync(dir, { recursive: true, force: true });
	});
});

describe("agent helpers", () => {
	it("backs off exponentially with jitter, up to the cap, and starts over on reset", () => {
		const none = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
		assert.deepEqual(
			Array.from({ length: 6 }, () => none.next()),
			[100, 200, 400, 800, 1000, 1000]
		);
		none.reset();
		assert.equal(none.next(), 100);
		const jittered = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.5 });
		for (let i = 0; i < 50; i++) {
			const base = Math.min(1000 * 2 ** i, 60_000);
			const delay = jittered.next();
			assert.ok(delay >= base * 0.5 && delay <= Math.min(base * 1.5, 60_000), `${delay} around ${base}`);
		}
	});

	it("keeps the last bytes of output and counts them all", () => {
		const tail = new TailBuffer(10);
		for (const part of ["hello ", "world, ", "this is the end"]) tail.write(Buffer.from(part));
		assert.equal(tail.toString(), "is the end");
		assert.equal(tail.total, 28);
		assert.ok(tail.truncated);
	});

	it("wraps processes in resource limits where the OS has them", () => {
		assert.deepEqual(withLimits(["echo", "hi"], {}), ["echo", "hi"]);
		const wrapped = withLimits(["echo", "hi"], { memoryMb: 64, cpuSeconds: 5 });
		assert.ok(wrapped.at(-2) === "echo" && wrapped.at(-1) === "hi");
		assert.ok(
			wrapped.some(a => a.includes("67108864") || a.includes("65536")),
			wrapped.join(" ")
		);
	});

	it("parses script references", () => {
		assert.deepEqual(parseScriptRef("deploy"), { name: "deploy", version: null });
		assert.deepEqual(parseScriptRef("deploy@12"), { name: "deploy", version: 12 });
		assert.throws(() => parseScriptRef("deploy@0"), /name@version/);
		assert.throws(() => parseScriptRef("../etc/passwd"), /name@version/);
	});

	it("streams output line by line, in order, and stops at its byte limit", async () => {
		const sent: string[] = [];
		const pump = new LogPump(async item => void sent.push(`${item.stream}:${item.log}`), 40);
		pump.write("stdout", "one\ntw");
		pump.write("stderr", "err\n");
		pump.write("stdout", "o\nthree");
		pump.write("stdout", "\n" + "x".repeat(50) + "\n");
		await pump.close(1000);
		assert.deepEqual(sent.slice(0, 4), ["stdout:one", "stderr:err", "stdout:two", "stdout:three"]);
		assert.match(sent[4], /live output stops here, after 40 bytes/);
		assert.equal(sent.length, 5);
	});

	it("gives up streaming when Tern refuses the attempt's logs for good", async () => {
		let calls = 0;
		const pump = new LogPump(async () => {
			calls++;
			throw new TernError("Task is already CANCELLED", "TASK_FINISHED", 409);
		}, 1000);
		pump.write("stdout", "a\nb\nc\n");
		await pump.close(1000);
		assert.equal(calls, 1);
	});
});
