/**
 * Named, versioned scripts stored in Tern (`/api/scripts`), fetched by the agent when a task
 * names one and cached on disk by name and version. A version never changes, so a cached one is
 * used as is (after its SHA-256 is checked again); `name` without a version asks Tern for the
 * latest each time, so a new version is used by the next task, with no restart.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RunnerError, type ScriptSource, type StoredScript } from "../runners/base.ts";
import { TernError, type RestClient } from "./rest.ts";

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** `name@version` or `name` → its parts; RunnerError when it is neither. */
export function parseScriptRef(ref: string): { name: string; version: number | null } {
	const at = ref.lastIndexOf("@");
	const name = at < 0 ? ref : ref.slice(0, at);
	const version = at < 0 ? null : ref.slice(at + 1);
	if (!NAME.test(name)) throw new RunnerError(`'script' must be 'name' or 'name@version', not '${ref}'`);
	if (version !== null && !/^[1-9][0-9]{0,8}$/.test(version))
		throw new RunnerError(`'script' must be 'name' or 'name@version' (a positive integer), not '${ref}'`);
	return { name, version: version === null ? null : Number(version) };
}

function sha256(body: string): string {
	return createHash("sha256").update(body).digest("hex");
}

export class ScriptStore implements ScriptSource {
	readonly dir: string;
	private readonly rest: RestClient;
	/** How many times each version was fetched from Tern (for tests and logs). */
	readonly fetched = new Map<string, number>();

	constructor(dir: string, rest: RestClient) {
		this.dir = dir;
		this.rest = rest;
		mkdirSync(dir, { recursive: true, mode: 0o700 });
	}

	/** The script a task names, from the cache or from Tern. */
	async get(ref: string): Promise<StoredScript> {
		const { name, version } = parseScriptRef(ref);
		if (version !== null) {
			const cached = this.cached(name, version);
			if (cached) return cached;
		}
		const path =
			version === null
				? `/api/scripts/${encodeURIComponent(name)}`
				: `/api/scripts/${encodeURIComponent(name)}/versions/${version}`;
		let script: StoredScript;
		try {
			script = await this.rest.call<StoredScript>("GET", path);
		} catch (err) {
			if (err instanceof TernError && (err.type === "SCRIPT_NOT_FOUND" || err.code === 404))
				throw new RunnerError(
					version === null
						? `Script '${name}' does not exist in Tern`
						: `Script '${name}@${version}' does not exist in Tern${err.message ? ` (${err.message})` : ""}`
				);
			throw new RunnerError(`Could not fetch script '${ref}' from Tern: ${(err as Error).message}`);
		}
		if (typeof script?.body !== "string" || typeof script.version !== "number")
			throw new RunnerError(`Tern answered script '${ref}' without a body or version`);
		if (script.sha256 && sha256(script.body) !== script.sha256)
			throw new RunnerError(`Script '${name}@${script.version}' failed its SHA-256 check: not run`);
		this.fetched.set(`${name}@${script.version}`, (this.fetched.get(`${name}@${script.version}`) ?? 0) + 1);
		this.store(script);
		return script;
	}

	private file(name: string, version: number): string {
		return join(this.dir, `${name}@${version}.json`);
	}

	private cached(name: string, version: number): StoredScript | null {
		try {
			const script = JSON.parse(readFileSync(this.file(name, version), "utf8")) as StoredScript;
			if (script.name === name && script.version === version && sha256(script.body) === script.sha256) return script;
		} catch {
			/* not cached, or damaged: fetch it again */
		}
		return null;
	}

	private store(script: StoredScript): void {
		const file = this.file(script.name, script.version);
		const tmp = `${file}.${process.pid}.tmp`;
		writeFileSync(tmp, JSON.stringify({ ...script, sha256: script.sha256 || sha256(script.body) }), { mode: 0o600 });
		renameSync(tmp, file);
	}
}
