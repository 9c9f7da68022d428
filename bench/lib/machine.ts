/** The machine a benchmark ran on, recorded beside its figures. */
import { arch, cpus, hostname, loadavg, release, totalmem, type } from "node:os";
import { round } from "./stats.ts";

export function loadAverage(): number[] {
	return loadavg().map(v => round(v, 2));
}

/** CPU, memory, Node and OS, and the load average before and after the run. */
export function describeMachine(loadAverageBefore: number[]) {
	return {
		cpuModel: cpus()[0]?.model ?? "unknown",
		cpus: cpus().length,
		totalMemoryMiB: round(totalmem() / 1024 / 1024, 1),
		node: process.version,
		os: `${type()} ${release()} ${arch()}`,
		hostname: hostname(),
		loadAverageBefore,
		loadAverageAfter: loadAverage()
	};
}
