/**
 * command: runs a program directly — `{ argv: [program, ...args], env?, cwd?, stdin?, timeout? }`,
 * no shell in between, so nothing in the arguments is interpreted. Only programs on the agent's
 * allowlist (`--allow-commands`, `*` for any) start; the result carries exitCode, stdout, stderr.
 */
import {
	optionalString,
	payloadObject,
	processOutcome,
	runProcess,
	RunnerError,
	stringArray,
	stringRecord,
	type RunContext,
	type RunOutcome,
	type Runner
} from "./base.ts";

/** Whether argv[0] is allowed: `*`, or listed exactly (a name is looked up on PATH, a path is taken as is). */
export function commandAllowed(program: string, allow: readonly string[]): boolean {
	return allow.includes("*") || allow.includes(program);
}

export class CommandRunner implements Runner {
	readonly name = "command";

	async check(): Promise<string | null> {
		return null;
	}

	async run(ctx: RunContext): Promise<RunOutcome> {
		const payload = payloadObject(ctx, "command");
		const argv = stringArray(payload.argv, "argv", false)!;
		if (argv.length === 0 || argv[0] === "") throw new RunnerError("'argv' must name a program: argv[0] is empty");
		if (!commandAllowed(argv[0], ctx.config.allowCommands))
			throw new RunnerError(
				`Command '${argv[0]}' is not allowed on this terminal: it is not on the agent's allowlist (--allow-commands ${
					ctx.config.allowCommands.length > 0 ? ctx.config.allowCommands.join(",") : "is empty"
				})`
			);
		const result = await runProcess(ctx, {
			argv,
			env: stringRecord(payload.env, "env"),
			cwd: optionalString(payload.cwd, "cwd"),
			stdin: optionalString(payload.stdin, "stdin")
		});
		return processOutcome(result);
	}
}
