/**
 * docker: runs a container with the Docker CLI — `{ image, args?: string[], env? }` becomes
 * `docker run --rm --name tern-<task>-<attempt> [-e NAME…] <image> <args…>`. The capability is
 * advertised only when `docker version` gets an answer from an engine: a terminal with the CLI
 * but no engine (or none at all) does not get docker tasks routed to it.
 *
 * A stop (timeout, cancel) signals the CLI's process group and runs `docker kill` on the
 * container. `--limit-memory` becomes `--memory`; the other limits are the engine's business.
 */
import { spawn } from "node:child_process";
import {
	payloadObject,
	probe,
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

const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class DockerRunner implements Runner {
	readonly name = "docker";
	private program = "docker";

	async check(): Promise<string | null> {
		const program = which("docker");
		if (!program) return "the Docker CLI is not installed";
		this.program = program;
		const answer = probe([program, "version", "--format", "{{.Server.Version}}"], 10_000);
		if (!answer.ok || !answer.stdout.trim())
			return `no Docker engine answers (docker version: ${answer.stderr.trim().split("\n").pop() || "no server version"})`;
		return null;
	}

	async run(ctx: RunContext): Promise<RunOutcome> {
		const payload = payloadObject(ctx, "docker");
		if (typeof payload.image !== "string" || !IMAGE.test(payload.image) || payload.image.startsWith("-"))
			throw new RunnerError(`'image' must be an image reference such as 'alpine:3.20', not '${String(payload.image)}'`);
		const args = stringArray(payload.args, "args") ?? [];
		const env = stringRecord(payload.env, "env") ?? {};
		for (const name of Object.keys(env))
			if (!ENV_NAME.test(name)) throw new RunnerError(`'env' name '${name}' is not a valid variable name`);
		const name = `tern-${ctx.task.taskId}-${ctx.task.attempt}`.replace(/[^A-Za-z0-9_.-]/g, "-");
		// Values go through the CLI's environment (`-e NAME`), not its arguments, so `ps` does not show them.
		const argv = [this.program, "run", "--rm", "--name", name, "--label", `tern.task=${ctx.task.taskId}`];
		if (ctx.config.limits.memoryMb !== undefined) argv.push("--memory", `${ctx.config.limits.memoryMb}m`);
		for (const key of Object.keys(env)) argv.push("-e", key);
		argv.push(payload.image, ...args);
		const result = await runProcess(
			{ ...ctx, config: { ...ctx.config, limits: {} } },
			{
				argv,
				env,
				onStop: () => {
					const kill = spawn(this.program, ["kill", name], { stdio: "ignore" });
					kill.on("error", () => undefined);
				}
			}
		);
		return processOutcome(result, { image: payload.image, container: name });
	}
}
