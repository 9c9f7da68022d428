import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, describe, it } from "node:test";
import { buildCommit, gitCommit } from "../../../lib/version.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);

describe("the build's commit", () => {
	const dirs: string[] = [];
	after(() => dirs.forEach(dir => rmSync(dir, { recursive: true, force: true })));

	function checkout(files: Record<string, string>): URL {
		const dir = mkdtempSync(join(tmpdir(), "tern-version-"));
		dirs.push(dir);
		for (const [name, text] of Object.entries(files)) {
			mkdirSync(join(dir, ".git", name, ".."), { recursive: true });
			writeFileSync(join(dir, ".git", name), text);
		}
		return pathToFileURL(`${dir}/`);
	}

	it("reads a detached HEAD, a loose ref and a packed one", () => {
		assert.equal(gitCommit(checkout({ HEAD: `${A}\n` })), A);
		assert.equal(gitCommit(checkout({ HEAD: "ref: refs/heads/main\n", "refs/heads/main": `${B}\n` })), B);
		const packed = `# pack-refs with: peeled\n${A} refs/heads/other\n${B} refs/heads/main\n`;
		assert.equal(gitCommit(checkout({ HEAD: "ref: refs/heads/main\n", "packed-refs": packed })), B);
	});

	it("is null without a checkout, for a ref that is not there or that climbs out of .git", () => {
		assert.equal(gitCommit(checkout({})), null);
		assert.equal(gitCommit(checkout({ HEAD: "ref: refs/heads/gone\n" })), null);
		assert.equal(gitCommit(checkout({ HEAD: "ref: ../../etc/passwd\n" })), null);
		assert.equal(gitCommit(checkout({ HEAD: "ref: refs/heads/main\n", "refs/heads/main": "not a sha\n" })), null);
	});

	it("prefers TERN_COMMIT when it names a commit", () => {
		assert.equal(buildCommit("ABCDEF1"), "abcdef1");
		assert.notEqual(buildCommit("not-a-commit"), "not-a-commit");
	});
});
