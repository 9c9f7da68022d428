/**
 * How Tern's lines are written: `text`, Moleculer's short format; or `json`, one object a line
 * (`ts`, `level`, `msg`, the logger's bindings `nodeID`, `ns`, `mod`) where the ids a line is
 * about are fields of their own. A caller marks them with `fields({ taskId, terminalId })` as
 * the first argument: in text they print as `taskId=… terminalId=…` before the message.
 */
import { inspect } from "node:util";
import type { LoggerConfig, LogLevels } from "moleculer";

export type LogFormat = "text" | "json";

/** Ids a log line is about, given as its first argument. */
export class LogFields {
	readonly values: Record<string, string | number | null | undefined>;

	constructor(values: Record<string, string | number | null | undefined>) {
		this.values = values;
	}

	toString(): string {
		return Object.entries(this.values)
			.filter(([, v]) => v !== undefined && v !== null)
			.map(([k, v]) => `${k}=${v}`)
			.join(" ");
	}
}

export function fields(values: Record<string, string | number | null | undefined>): LogFields {
	return new LogFields(values);
}

/** Objects (errors among them) as Moleculer prints them by default; LogFields as `k=v` pairs. */
function printObject(value: unknown): string {
	if (value instanceof LogFields) return value.toString();
	return inspect(value, { showHidden: false, depth: 2, colors: false, breakLength: Number.POSITIVE_INFINITY });
}

type Printer = { printArgs(args: unknown[]): unknown[] };

/** One JSON object a line; a leading LogFields merged in as fields. */
function jsonLine(type: string, args: unknown[], bindings: Record<string, unknown>, { printArgs }: Printer): string[] {
	const ids = args[0] instanceof LogFields ? args.shift() : undefined;
	const line: Record<string, unknown> = { ts: Date.now(), level: type, msg: printArgs(args).join(" "), ...bindings };
	if (ids instanceof LogFields) for (const [k, v] of Object.entries(ids.values)) if (v !== undefined && v !== null) line[k] = v;
	return [JSON.stringify(line)];
}

/** Moleculer's Console logger in the given format. */
export function loggerOptions(format: LogFormat, level: LogLevels): LoggerConfig {
	if (format === "json")
		return {
			type: "Console",
			options: { level, colors: false, objectPrinter: printObject, formatter: jsonLine }
		} as unknown as LoggerConfig;
	return {
		type: "Console",
		options: { level, formatter: "short", colors: false, objectPrinter: printObject }
	} as unknown as LoggerConfig;
}
