/**
 * Where the agent's secrets come from: the token from TERN_TOKEN or --token-file (--token still
 * works, with a warning, since it shows in the process list), and a CA file (--ca, TERN_CA) for a
 * Tern whose certificate no public CA signed.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../agent/sdk/config.ts";
import { pemCertificates } from "../../agent/sdk/tls.ts";
import { CLI } from "./helpers.ts";

function tokenFor(sub: string): string {
	const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
	return `${part({ alg: "HS256" })}.${part({ sub, kind: "terminal" })}.sig`;
}

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("agent token and CA", () => {
	const dir = mkdtempSync(join(tmpdir(), "tern-agent-token-"));
	after(() => rmSync(dir, { recursive: true, force: true }));

	it("takes the token from TERN_TOKEN, --token-file or --token, and says which", () => {
		const url = ["--url", "https://tern.example.com"];
		const fromEnv = loadConfig(url, { TERN_TOKEN: tokenFor("env-1") }).config!;
		assert.equal(fromEnv.terminalId, "env-1");
		assert.equal(fromEnv.tokenFrom, "env");
		const file = join(dir, "token");
		writeFileSync(file, `${tokenFor("file-1")}\n`, { mode: 0o600 });
		const fromFile = loadConfig([...url, "--token-file", file], {}).config!;
		assert.equal(fromFile.terminalId, "file-1");
		assert.equal(fromFile.tokenFrom, "file");
		assert.equal(loadConfig(url, { TERN_TOKEN_FILE: file }).config!.tokenFrom, "file");
		assert.equal(loadConfig([...url, "--token", tokenFor("argv-1")], {}).config!.tokenFrom, "argv");
		assert.throws(() => loadConfig([...url, "--token-file", join(dir, "missing")], {}), /--token-file .*missing/);
	});

	it("warns when the token is given on the command line, not when it comes from TERN_TOKEN", () => {
		// An unknown runner stops the CLI right after the warning, before it connects anywhere.
		const args = [CLI, "--url", "http://127.0.0.1:9", "--runners", "nope", "--data-dir", dir];
		const argv = spawnSync(process.execPath, [...args, "--token", tokenFor("w")], { encoding: "utf8", timeout: 20_000 });
		assert.equal(argv.status, 2, argv.stderr);
		assert.match(argv.stdout + argv.stderr, /--token is visible to every user of this machine/);
		const env = spawnSync(process.execPath, args, {
			encoding: "utf8",
			timeout: 20_000,
			env: { PATH: process.env.PATH, TERN_TOKEN: tokenFor("w") }
		});
		assert.equal(env.status, 2, env.stderr);
		assert.doesNotMatch(env.stdout + env.stderr, /visible to every user/);
		assert.doesNotMatch(env.stdout + env.stderr, /eyJ/, "the token is never printed");
	});

	it("reads --ca (or TERN_CA) as PEM, and refuses a file that is missing or not a certificate", () => {
		const ca = join(dir, "ca.pem");
		writeFileSync(ca, CERT + CERT);
		const base = ["--url", "https://tern.example.com", "--token-file", join(dir, "token")];
		writeFileSync(join(dir, "token"), tokenFor("ca-1"));
		assert.equal(loadConfig([...base, "--ca", ca], {}).config!.ca, CERT + CERT);
		assert.equal(loadConfig(base, { TERN_CA: ca }).config!.ca, CERT + CERT);
		assert.equal(loadConfig(base, {}).config!.ca, null);
		assert.equal(pemCertificates(CERT + CERT).length, 2);
		assert.throws(() => loadConfig([...base, "--ca", join(dir, "nope.pem")], {}), /--ca .*nope\.pem/);
		writeFileSync(join(dir, "bad.pem"), "hello");
		assert.throws(() => loadConfig([...base, "--ca", join(dir, "bad.pem")], {}), /no PEM certificate/);
	});
});
