/**
 * Tern's version, from its package.json, and the commit it was built from when known: what
 * `/api/version` and the status page report. The commit is the configuration's (`TERN_COMMIT`,
 * which the image sets at build time), else the checkout's `.git`; null otherwise.
 */
import { existsSync, readFileSync } from "node:fs";

const ROOT = new URL("../", import.meta.url);

export const VERSION: string = (JSON.parse(readFileSync(new URL("package.json", ROOT), "utf8")) as { version: string }).version;

const SHA = /^[0-9a-f]{40}$/;

/** The commit of the checkout at `root`: HEAD, a loose ref or a packed one; null when none is found. */
export function gitCommit(root: URL = ROOT): string | null {
	try {
		const git = new URL(".git/", root);
		const head = readFileSync(new URL("HEAD", git), "utf8").trim();
		if (SHA.test(head)) return head;
		const ref = /^ref: (.+)$/.exec(head)?.[1];
		if (!ref || ref.includes("..")) return null;
		const loose = new URL(ref, git);
		if (existsSync(loose)) {
			const sha = readFileSync(loose, "utf8").trim();
			return SHA.test(sha) ? sha : null;
		}
		const packed = readFileSync(new URL("packed-refs", git), "utf8");
		const line = packed.split("\n").find(l => l.endsWith(` ${ref}`));
		const sha = line?.split(" ")[0] ?? "";
		return SHA.test(sha) ? sha : null;
	} catch {
		return null;
	}
}

/** The build's commit: `given` (TERN_COMMIT) when it names one, else the checkout's. */
export function buildCommit(given: string | undefined): string | null {
	const commit = given?.trim().toLowerCase();
	if (commit && /^[0-9a-f]{7,40}$/.test(commit)) return commit;
	return gitCommit();
}
