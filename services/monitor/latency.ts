/**
 * The phase latencies of the status page: the durations of the tasks that ended in the last
 * minute (`phases` of their final `task.statuses` event), per phase, as p50/p95/p99. Each phase
 * keeps at most `MAX_SAMPLES` of the newest samples, so a busy minute costs bounded memory.
 */
import type { PhaseLatency, TaskStatusEvent } from "../../lib/contracts.ts";

export const LATENCY_WINDOW_MS = 60_000;
const MAX_SAMPLES = 4096;
const PHASES = ["queue", "start", "run", "total"] as const;
type Phase = (typeof PHASES)[number];

/** The value at quantile `q` (0–1) of sorted `values`, by the nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
	if (sorted.length === 0) return 0;
	const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
	return sorted[rank - 1]!;
}

class Ring {
	private readonly at = new Float64Array(MAX_SAMPLES);
	private readonly ms = new Float64Array(MAX_SAMPLES);
	private next = 0;
	private size = 0;

	add(at: number, ms: number): void {
		this.at[this.next] = at;
		this.ms[this.next] = ms;
		this.next = (this.next + 1) % MAX_SAMPLES;
		this.size = Math.min(this.size + 1, MAX_SAMPLES);
	}

	since(oldest: number): number[] {
		const out: number[] = [];
		for (let i = 0; i < this.size; i++) if (this.at[i]! >= oldest) out.push(this.ms[i]!);
		return out;
	}
}

export class LatencyWindow {
	private readonly rings = new Map<Phase, Ring>(PHASES.map(phase => [phase, new Ring()]));

	record(events: readonly TaskStatusEvent[], now = Date.now()): void {
		for (const event of events) {
			if (!event.phases) continue;
			for (const phase of PHASES) {
				const ms = event.phases[phase];
				if (typeof ms === "number" && ms >= 0) this.rings.get(phase)!.add(now, ms);
			}
		}
	}

	summary(now = Date.now()): Partial<Record<Phase, PhaseLatency>> {
		const out: Partial<Record<Phase, PhaseLatency>> = {};
		for (const phase of PHASES) {
			const values = this.rings
				.get(phase)!
				.since(now - LATENCY_WINDOW_MS)
				.sort((a, b) => a - b);
			if (values.length === 0) continue;
			out[phase] = {
				p50: quantile(values, 0.5),
				p95: quantile(values, 0.95),
				p99: quantile(values, 0.99),
				count: values.length
			};
		}
		return out;
	}
}
