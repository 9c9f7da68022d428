/**
 * The agent's log: one line per record on stderr, `time level message`, filtered by level.
 * Kept tiny on purpose: the agent runs on small devices too, and its output is read by people
 * and by the tests that drive it.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
	debug(message: string): void;
	info(message: string): void;
	warn(message: string): void;
	error(message: string): void;
}

export function createLogger(
	level: LogLevel = "info",
	write: (line: string) => void = line => process.stderr.write(line)
): Logger {
	const min = LOG_LEVELS.indexOf(level);
	const at = (name: LogLevel) => (message: string) => {
		if (LOG_LEVELS.indexOf(name) < min) return;
		write(`${new Date().toISOString()} ${name.toUpperCase().padEnd(5)} ${message}\n`);
	};
	return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export const silentLogger: Logger = createLogger("silent");
