/**
 * script: runs a script with an interpreter — one stored in Tern and named by the task
 * (`{ script: "name@version" | "name", args?, env? }`, fetched and cached, see sdk/scripts.ts) or
 * sent inline (`{ interpreter, body, args?, env? }`). The body is written to a private file and
 * run as `<interpreter> <file> <args…>` in its own process group, like a command.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
	optionalString,
	payloadObject,
	processOutcome,
	runProcess,
	RunnerError,
	stringArray,
	stringRecord,
	which,
	type RunContext,
	type RunOutcome,
	type Runner
} from "./base.ts";

export const INTERPRETERS = ["sh", "bash", "python3", "node"] as const;
const EXTENSIONS: Record<string, string> = { sh: ".sh", bash: ".sh", python3: ".py", node: ".mjs" };

/** The program behind an interpreter name here, or null. `node` is the agent's own Node. */
export function interpreterPath(name: string): string | null {
	if (!(INTERPRETERS as readonly string[]).includes(name)) return null;
	if (name === "node") return process.execPath;
	return which(name);
}

export class ScriptRunner implements Runner {
	readonly name = "script";

	async check(): Promise<string | null> {
		const found = INTERPRETERS.filter(i => interpreterPath(i));
		return found.length > 0 ? null : `none of the interpreters ${INTERPRETERS.join(", ")} is installed`;
	}

	async run(ctx: RunContext): Promise<RunOutcome> {
		const payload = payloadObject(ctx, "script");
		const args = stringArray(payload.args, "args") ?? [];
		const env = stringRecord(payload.env, "env");
		let interpreter: string;
		let body: string;
		let source: Record<string, unknown>;
		if (payload.script !== undefined) {
			if (typeof payload.script !== "string") throw new RunnerError("'script' must be a string: 'name' or 'name@version'");
			if (payload.body !== undefined) throw new RunnerError("Give either 'script' or 'body' (and not both)");
			const script = await ctx.scripts.get(payload.script);
			({ interpreter, body } = script);
			source = { name: script.name, version: script.version, sha256: script.sha256 };
			ctx.logger.debug(`Task ${ctx.task.taskId}: script ${script.name}@${script.version} (${script.sha256.slice(0, 12)})`);
		} else {
			const inline = optionalString(payload.body, "body");
			if (inline === undefined) throw new RunnerError("The script runner needs 'script' (name or name@version) or 'body'");
			interpreter = optionalString(payload.interpreter, "interpreter") ?? "sh";
			body = inline;
			source = { inline: true };
		}
		if (!(INTERPRETERS as readonly string[]).includes(interpreter))
			throw new RunnerError(`Interpreter '${interpreter}' is not supported: use one of ${INTERPRETERS.join(", ")}`);
		const program = interpreterPath(interpreter);
		if (!program) throw new RunnerError(`Interpreter '${interpreter}' is not installed on this terminal`);
		const file = join(ctx.workDir(), `script${EXTENSIONS[interpreter]}`);
		writeFileSync(file, body, { mode: 0o700 });
		chmodSync(file, 0o700);
		const result = await runProcess(ctx, { argv: [program, file, ...args], env, cwd: ctx.workDir() });
		return processOutcome(result, { script: source });
	}
}
