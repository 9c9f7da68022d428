/**
 * The agent as a package: `npm pack` in agent/ builds it to JavaScript and makes a tarball that
 * installs into an empty folder with socket.io-client as its only dependency, and runs as
 * `npx tern-agent --url …` with the token from TERN_TOKEN — a task pushed to it ends COMPLETED.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { globSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TestTern } from "../helpers/tern.ts";
import { AgentProcess, disposeAgents } from "./helpers.ts";

const AGENT = fileURLToPath(new URL("../../agent/", import.meta.url));
// npm and the installed bin's `#!/usr/bin/env node` find this Node first.
const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH}`;

function npm(args: string[], cwd: string): string {
	const result = spawnSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
		cwd,
		encoding: "utf8",
		env: { ...process.env, PATH },
		timeout: 180_000
	});
	assert.equal(result.status, 0, `npm ${args.join(" ")}:\n${result.stdout}\n${result.stderr}`);
	return result.stdout;
}

describe("the agent package", () => {
	const tmp = mkdtempSync(join(tmpdir(), "tern-agent-pack-"));
	const app = join(tmp, "app");
	let tarball: string;
	let tern: TestTern;

	before(() => {
		npm(["pack", "--pack-destination", tmp], AGENT);
		tarball = join(
			tmp,
			readdirSync(tmp).find(name => name.endsWith(".tgz"))!
		);
		mkdirSync(app);
		writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
		npm(["install", "--prefer-offline", tarball], app);
	});
	after(async () => {
		await disposeAgents();
		await tern?.close();
		rmSync(tmp, { recursive: true, force: true });
	});

	it("installs plain JavaScript, and socket.io-client as its one dependency", () => {
		const installed = join(app, "node_modules", "tern-agent");
		const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
		assert.deepEqual(Object.keys(manifest.dependencies), ["socket.io-client"]);
		assert.deepEqual(globSync("**/*.ts", { cwd: installed }), []);
		assert.ok(globSync("dist/**/*.js", { cwd: installed }).includes("dist/cli.js"));
		const version = spawnSync("npx", ["--no-install", "tern-agent", "--version"], {
			cwd: app,
			encoding: "utf8",
			env: { ...process.env, PATH }
		});
		assert.equal(version.stdout.trim(), `tern-agent ${manifest.version}`, version.stderr);
	});

	it("runs as npx tern-agent with TERN_TOKEN, and completes a task", async () => {
		tern = await TestTern.start();
		const token = await tern.registerTerminal("packed-1");
		const agent = await AgentProcess.start(tern, "packed-1", token, {
			command: ["npx", "--no-install", "tern-agent"],
			cwd: app,
			args: ["--allow-commands", "echo"],
			env: { PATH }
		});
		const taskId = await tern.submit({ terminalId: "packed-1", type: "command", payload: { argv: ["echo", "packed"] } });
		const view = await tern.client.wait(taskId, { timeoutMs: 15_000 });
		assert.equal(view.status, "COMPLETED", agent.output.slice(-2000));
		assert.equal((view.data as { stdout: string }).stdout, "packed\n");
		assert.ok(!agent.output.includes(token), "the token is never printed");
	});
});
