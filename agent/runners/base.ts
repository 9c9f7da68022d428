/**
 * What every runner is, and what those that start processes share: a process group per task
 * (SIGTERM, then SIGKILL after a grace period, to the whole group), resource limits where the
 * OS has them, output kept to its last bytes and streamed live as it comes.
 */
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { TaskPush } from "../../lib/contracts.ts";
import type { AgentConfig, ResourceLimits } from "../sdk/config.ts";
import type { Logger } from "../sdk/log.ts";

export type Stream = "stdout" | "stderr";

/** Why a run was stopped before it ended on its own. */
export interface StopReason {
	kind: "timeout" | "cancel" | "shutdown" | "refused";
	message: string;
}

export interface RunContext {
	task: TaskPush;
	payload: unknown;
	/** Aborted (with a StopReason) on timeout, cancel from Tern, or shutdown. */
	signal: AbortSignal;
	/** When the run is killed for its timeout (epoch ms). */
	deadline: number;
	config: AgentConfig;
	logger: Logger;
	scripts: ScriptSource;
	/** Live output, streamed to Tern as progress logs. */
	log(stream: Stream, text: string): void;
	/** Progress in percent, streamed to Tern. */
	percent(value: number): void;
	/** A started process group, recorded so that a later agent can end it if this one dies. */
	started(pgid: number): void;
	/** A private directory for this run, removed when it ends. */
	workDir(): string;
}

/** A script stored in Tern, named by a task (`name@version` or `name`). */
export interface StoredScript {
	name: string;
	version: number;
	interpreter: string;
	body: string;
	sha256: string;
}

/** Where a runner gets the script a task names (the SDK's ScriptStore: fetched, checked, cached). */
export interface ScriptSource {
	get(ref: string): Promise<StoredScript>;
}

/** How a run ended; the agent turns it into the result it sends. */
export interface RunOutcome {
	status: "success" | "failed";
	output?: unknown;
	error?: string;
	exitCode?: number | null;
}

export interface Runner {
	readonly name: string;
	/** Null when the runner can work here; otherwise why not (the capability is then not advertised). */
	check(config: AgentConfig): Promise<string | null>;
	run(ctx: RunContext): Promise<RunOutcome>;
}

/** A task this runner refuses or cannot do: a FAILED result with this message, the agent unharmed. */
export class RunnerError extends Error {
	readonly output?: unknown;
	constructor(message: string, output?: unknown) {
		super(message);
		this.output = output;
	}
}

// ------------------------------------------------------------------ payload checks

export function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function payloadObject(ctx: RunContext, runner: string): Record<string, unknown> {
	if (!isRecord(ctx.payload)) throw new RunnerError(`The ${runner} runner needs an object payload`);
	return ctx.payload;
}

export function stringArray(value: unknown, field: string, optional = true): string[] | undefined {
	if (value === undefined && optional) return undefined;
	if (!Array.isArray(value) || !value.every(v => typeof v === "string"))
		throw new RunnerError(`'${field}' must be an array of strings`);
	return value;
}

export function stringRecord(value: unknown, field: string): Record<string, string> | undefined {
	if (value === undefined) return undefined;
	if (!isRecord(value) || !Object.values(value).every(v => typeof v === "string"))
		throw new RunnerError(`'${field}' must be an object of string values`);
	return value as Record<string, string>;
}

export function optionalString(value: unknown, field: string): string | undefined {
	if (value === undefined) return undefined;
	if (typeof value !== "string") throw new RunnerError(`'${field}' must be a string`);
	return value;
}

// ------------------------------------------------------------------ programs on PATH

/** The full path of a program found on PATH (or the path itself when it has a slash), or null. */
export function which(program: string, path = process.env.PATH ?? ""): string | null {
	const candidates = program.includes("/") ? [program] : path.split(delimiter).map(dir => join(dir || ".", program));
	for (const candidate of candidates) {
		try {
			accessSync(candidate, constants.X_OK);
			return candidate;
		} catch {
			/* next */
		}
	}
	return null;
}

// ------------------------------------------------------------------ process groups

/** Signals a process group; false when it is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
	try {
		process.kill(-pgid, signal);
		return true;
	} catch {
		return false;
	}
}

/** A process's start time (Linux), to tell it from a later process that got the same pid. */
export function processStart(pid: number): string | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		// Field 22 (starttime), counted after the command name, which may hold spaces.
		return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
	} catch {
		return undefined;
	}
}

/** SIGTERM to the group, then SIGKILL after the grace period if anything of it is left. */
export function terminateGroup(pgid: number, graceMs: number): void {
	if (!signalGroup(pgid, "SIGTERM")) return;
	const timer = setTimeout(() => signalGroup(pgid, "SIGKILL"), graceMs);
	timer.unref();
}

// ------------------------------------------------------------------ resource limits

let prlimitPath: string | null | undefined;

/**
 * Wraps argv so that the process starts under the limits: with util-linux `prlimit` when it is
 * installed, else through `/bin/sh -c 'ulimit …; exec "$@"'`. Nothing where neither exists.
 */
export function withLimits(argv: string[], limits: ResourceLimits): string[] {
	const { memoryMb, cpuSeconds, openFiles, processes, fileSizeMb } = limits;
	if ([memoryMb, cpuSeconds, openFiles, processes, fileSizeMb].every(v => v === undefined)) return argv;
	if (prlimitPath === undefined) prlimitPath = process.platform === "linux" ? which("prlimit") : null;
	if (prlimitPath) {
		const flags: string[] = [];
		if (memoryMb !== undefined) flags.push(`--as=${memoryMb * 1024 * 1024}`);
		if (cpuSeconds !== undefined) flags.push(`--cpu=${cpuSeconds}`);
		if (openFiles !== undefined) flags.push(`--nofile=${openFiles}`);
		if (processes !== undefined) flags.push(`--nproc=${processes}`);
		if (fileSizeMb !== undefined) flags.push(`--fsize=${fileSizeMb * 1024 * 1024}`);
		return [prlimitPath, ...flags, "--", ...argv];
	}
	if (process.platform === "win32" || !which("/bin/sh")) return argv;
	const steps: string[] = [];
	if (memoryMb !== undefined) steps.push(`ulimit -v ${memoryMb * 1024}`);
	if (cpuSeconds !== undefined) steps.push(`ulimit -t ${cpuSeconds}`);
	if (openFiles !== undefined) steps.push(`ulimit -n ${openFiles}`);
	if (processes !== undefined) steps.push(`ulimit -u ${processes}`);
	if (fileSizeMb !== undefined) steps.push(`ulimit -f ${fileSizeMb * 2048}`);
	return ["/bin/sh", "-c", `${steps.join(" && ")} && exec "$@"`, "tern-limits", ...argv];
}

// ------------------------------------------------------------------ output

/** Keeps the last `limit` bytes written to it, and counts them all. */
export class TailBuffer {
	private chunks: Buffer[] = [];
	private size = 0;
	total = 0;
	private readonly limit: number;

	constructor(limit: number) {
		this.limit = limit;
	}

	write(chunk: Buffer): void {
		this.total += chunk.length;
		if (this.limit === 0) return;
		this.chunks.push(chunk);
		this.size += chunk.length;
		while (this.size - this.chunks[0].length >= this.limit) this.size -= this.chunks.shift()!.length;
	}

	get truncated(): boolean {
		return this.total > this.limit;
	}

	toString(): string {
		const all = Buffer.concat(this.chunks);
		return all.subarray(Math.max(0, all.length - this.limit)).toString("utf8");
	}
}

/** The environment a task's process sees: the agent's, without its own secrets, plus the task's. */
export function taskEnv(ctx: RunContext, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {};
	for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("TERN_")) env[key] = value;
	env.TERN_TASK_ID = ctx.task.taskId;
	env.TERN_TASK_ATTEMPT = String(ctx.task.attempt);
	env.TERN_TASK_TYPE = ctx.task.type;
	if (ctx.task.shardIndex !== undefined) env.TERN_SHARD_INDEX = String(ctx.task.shardIndex);
	if (ctx.task.shardTotal !== undefined) env.TERN_SHARD_TOTAL = String(ctx.task.shardTotal);
	return { ...env, ...extra };
}

export interface ProcessSpec {
	argv: string[];
	env?: Record<string, string>;
	cwd?: string;
	stdin?: string;
	/** Called once on stop (besides the signals to the group), e.g. to stop a container. */
	onStop?: () => void;
}

export interface ProcessResult {
	exitCode: number | null;
	signal: string | null;
	stdout: string;
	stderr: string;
	stdoutBytes: number;
	stderrBytes: number;
	truncated: boolean;
	durationMs: number;
}

/**
 * Runs a process in its own process group and waits for it. A stop (the context's signal)
 * sends SIGTERM to the group, then SIGKILL after the grace period; when the process ends, what
 * is left of its group (children it left behind) is killed too, so a task leaves nothing running.
 */
export function runProcess(ctx: RunContext, spec: ProcessSpec): Promise<ProcessResult> {
	const argv = withLimits(spec.argv, ctx.config.limits);
	const started = Date.now();
	return new Promise((resolve, reject) => {
		if (ctx.signal.aborted) return reject(new RunnerError((ctx.signal.reason as StopReason).message));
		const child = spawn(argv[0], argv.slice(1), {
			detached: true,
			cwd: spec.cwd,
			env: taskEnv(ctx, spec.env),
			stdio: ["pipe", "pipe", "pipe"]
		});
		const out = { stdout: new TailBuffer(ctx.config.outputLimit), stderr: new TailBuffer(ctx.config.outputLimit) };
		let exited: { code: number | null; signal: string | null } | null = null;
		let settled = false;
		let pgid = 0;
		const onAbort = () => {
			if (!pgid) return;
			terminateGroup(pgid, ctx.config.killGraceMs);
			spec.onStop?.();
		};
		const finish = () => {
			if (settled || !exited) return;
			settled = true;
			ctx.signal.removeEventListener("abort", onAbort);
			resolve({
				exitCode: exited.code,
				signal: exited.signal,
				stdout: out.stdout.toString(),
				stderr: out.stderr.toString(),
				stdoutBytes: out.stdout.total,
				stderrBytes: out.stderr.total,
				truncated: out.stdout.truncated || out.stderr.truncated,
				durationMs: Date.now() - started
			});
		};
		child.once("spawn", () => {
			pgid = child.pid!;
			ctx.started(pgid);
			if (ctx.signal.aborted) onAbort();
		});
		child.once("error", err => {
			if (settled) return;
			settled = true;
			ctx.signal.removeEventListener("abort", onAbort);
			const code = (err as NodeJS.ErrnoException).code;
			reject(
				new RunnerError(
					code === "ENOENT"
						? `Cannot start '${spec.argv[0]}': no such program${spec.cwd ? ` (or no directory '${spec.cwd}')` : ""}`
						: code === "EACCES"
							? `Cannot start '${spec.argv[0]}': permission denied`
							: `Cannot start '${spec.argv[0]}': ${err.message}`
				)
			);
		});
		ctx.signal.addEventListener("abort", onAbort, { once: true });
		for (const stream of ["stdout", "stderr"] as const) {
			const decoder = new StringDecoder("utf8");
			child[stream].on("data", (chunk: Buffer) => {
				out[stream].write(chunk);
				ctx.log(stream, decoder.write(chunk));
			});
			child[stream].on("end", () => {
				const rest = decoder.end();
				if (rest) ctx.log(stream, rest);
			});
		}
		child.stdin.on("error", () => undefined);
		if (spec.stdin !== undefined) child.stdin.end(spec.stdin);
		else child.stdin.end();
		child.once("exit", (code, signal) => {
			exited = { code, signal };
			// Whatever the task left behind in its group goes with it.
			if (pgid) signalGroup(pgid, "SIGKILL");
			// Output still comes until the pipes close; a descendant that escaped the group may
			// hold them open, so the wait is bounded.
			const timer = setTimeout(() => {
				child.stdout.destroy();
				child.stderr.destroy();
				finish();
			}, 2000);
			timer.unref();
		});
		child.once("close", (code, signal) => {
			exited ??= { code, signal };
			finish();
		});
	});
}

/** The standard result of a finished process: success on exit code 0. */
export function processOutcome(result: ProcessResult, extra: Record<string, unknown> = {}): RunOutcome {
	const output = {
		exitCode: result.exitCode,
		signal: result.signal,
		stdout: result.stdout,
		stderr: result.stderr,
		...(result.truncated ? { truncated: true, stdoutBytes: result.stdoutBytes, stderrBytes: result.stderrBytes } : {}),
		durationMs: result.durationMs,
		...extra
	};
	if (result.exitCode === 0) return { status: "success", output, exitCode: 0 };
	const lastLine = result.stderr.trimEnd().split("\n").pop()?.slice(0, 500);
	const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
	return {
		status: "failed",
		output,
		error: `The process ${how}${lastLine ? `: ${lastLine}` : ""}`,
		exitCode: result.exitCode ?? (result.signal ? 128 + signalNumber(result.signal) : null)
	};
}

function signalNumber(signal: string): number {
	const numbers: Record<string, number> = {
		SIGHUP: 1,
		SIGINT: 2,
		SIGQUIT: 3,
		SIGKILL: 9,
		SIGSEGV: 11,
		SIGPIPE: 13,
		SIGTERM: 15,
		SIGXCPU: 24,
		SIGXFSZ: 25
	};
	return numbers[signal] ?? 0;
}

/** Runs a program to its end, briefly, for checks at start-up (`docker version`). */
export function probe(argv: string[], timeoutMs = 5000): { ok: boolean; stdout: string; stderr: string } {
	const result = spawnSync(argv[0], argv.slice(1), { timeout: timeoutMs, encoding: "utf8" });
	return { ok: result.status === 0, stdout: result.stdout ?? "", stderr: result.stderr ?? String(result.error ?? "") };
}
