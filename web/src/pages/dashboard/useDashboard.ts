/**
 * The dashboard's data: `/api/system/status` every 5 s (and after a reconnect), moved between
 * polls by the live channel — task counts, per-second throughput, terminals and alerts — so the
 * numbers and the charts move as work happens.
 */
import { onMounted, onUnmounted, reactive, ref, shallowRef } from "vue";
import { api } from "../../api/client.ts";
import type { SystemStatus, TaskStatus } from "../../api/types.ts";
import { onAlert, onReconnected, onStatuses, onTerminal } from "../../live/connection.ts";

const SECONDS = 300;
const POLL_MS = 5000;
const REMEMBERED = 5000;

export function useDashboard() {
	const status = ref<SystemStatus | null>(null);
	const error = ref<unknown>(null);
	const counts = reactive<Record<string, number>>({});
	/** [t, submitted, completed, failed] per second. */
	const throughput = shallowRef<number[][]>([[], [], [], []]);
	/** [t, total p50, total p99, queue p99] per poll. */
	const latency = shallowRef<number[][]>([[], [], [], []]);
	const known = new Map<string, TaskStatus>();
	let second = { submitted: 0, completed: 0, failed: 0 };
	const timers: ReturnType<typeof setInterval>[] = [];
	const stops: (() => void)[] = [];

	async function poll(): Promise<void> {
		try {
			const next = await api.get<SystemStatus>("/system/status");
			status.value = next;
			for (const key of Object.keys(counts)) delete counts[key];
			Object.assign(counts, next.tasks);
			error.value = null;
			const [t, p50, p99, q99] = latency.value;
			const now = Math.floor(Date.now() / 1000);
			const l = next.latency ?? {};
			latency.value = [
				[...t!, now].slice(-120),
				[...p50!, l.total?.p50 ?? 0].slice(-120),
				[...p99!, l.total?.p99 ?? 0].slice(-120),
				[...q99!, l.queue?.p99 ?? 0].slice(-120)
			];
		} catch (err) {
			error.value = err;
		}
	}

	function tick(): void {
		const [t, s, c, f] = throughput.value;
		throughput.value = [
			[...t!, Math.floor(Date.now() / 1000)].slice(-SECONDS),
			[...s!, second.submitted].slice(-SECONDS),
			[...c!, second.completed].slice(-SECONDS),
			[...f!, second.failed].slice(-SECONDS)
		];
		second = { submitted: 0, completed: 0, failed: 0 };
	}

	onMounted(() => {
		void poll();
		timers.push(setInterval(poll, POLL_MS), setInterval(tick, 1000));
		stops.push(
			onStatuses(({ events }) => {
				for (const event of events) {
					if (event.submitted) second.submitted++;
					if (event.status === "COMPLETED") second.completed++;
					if (event.status === "FAILED" || event.status === "TIMEOUT") second.failed++;
					const before = known.get(event.taskId);
					if (before) counts[before] = Math.max(0, (counts[before] ?? 0) - 1);
					if (before || event.submitted) counts[event.status] = (counts[event.status] ?? 0) + 1;
					known.set(event.taskId, event.status);
					if (known.size > REMEMBERED) known.delete(known.keys().next().value!);
				}
			}),
			onTerminal(event => {
				const terminals = status.value?.terminals;
				if (!terminals) return;
				const delta = event.status === "online" ? 1 : -1;
				terminals.online = Math.max(0, terminals.online + delta);
				terminals.offline = Math.max(0, terminals.offline - delta);
			}),
			onAlert(() => void poll()),
			onReconnected(() => void poll())
		);
	});
	onUnmounted(() => {
		timers.forEach(clearInterval);
		stops.forEach(stop => stop());
	});

	return { status, error, counts, throughput, latency, refresh: poll };
}
