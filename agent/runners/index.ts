/**
 * The runner family: a task's `type` names its runner. `resolve(name)` gives one and refuses
 * names it does not know, so a typo in `--runners` stops the agent at start-up; `loadRunners`
 * keeps those that can work here — their names are the capabilities the agent advertises.
 */
import type { AgentConfig } from "../sdk/config.ts";
import type { Logger } from "../sdk/log.ts";
import type { Runner } from "./base.ts";
import { CommandRunner } from "./command.ts";
import { DockerRunner } from "./docker.ts";
import { HttpRunner } from "./http.ts";
import { ScriptRunner } from "./script.ts";

const FACTORIES: Record<string, () => Runner> = {
	command: () => new CommandRunner(),
	script: () => new ScriptRunner(),
	http: () => new HttpRunner(),
	docker: () => new DockerRunner()
};

export const RUNNER_NAMES: readonly string[] = Object.keys(FACTORIES);

export class UnknownRunnerError extends Error {}

/** A new runner of that name; UnknownRunnerError for a name that is none. */
export function resolve(name: string): Runner {
	const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
	if (!factory) throw new UnknownRunnerError(`Unknown runner '${name}': the runners are ${RUNNER_NAMES.join(", ")}`);
	return factory();
}

/**
 * The runners to use: those named in the config (all when none are), without those that cannot
 * work here (said in the log). Throws UnknownRunnerError for an unknown name.
 */
export async function loadRunners(config: AgentConfig, logger: Logger, extra: Runner[] = []): Promise<Map<string, Runner>> {
	const names = config.runners ?? RUNNER_NAMES;
	const wanted = names.map(resolve);
	const runners = new Map<string, Runner>();
	for (const runner of [...wanted, ...extra]) {
		const problem = await runner.check(config);
		if (problem) {
			const log = config.runners?.includes(runner.name) ? logger.warn : logger.info;
			log(`Runner '${runner.name}' is not available here: ${problem}; '${runner.name}' tasks are not taken`);
			continue;
		}
		runners.set(runner.name, runner);
	}
	return runners;
}

export type { Runner, RunContext, RunOutcome } from "./base.ts";
