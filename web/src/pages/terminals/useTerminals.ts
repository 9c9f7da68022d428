/** Terminals as the API lists them, kept current by presence events and a reload on reconnect. */
import { onMounted, onUnmounted, ref } from "vue";
import { api } from "../../api/client.ts";
import type { TerminalView } from "../../api/types.ts";
import { onReconnected, onTerminal } from "../../live/connection.ts";

export function useTerminals() {
	const terminals = ref<TerminalView[]>([]);
	const error = ref<unknown>(null);
	const loaded = ref(false);

	async function load(): Promise<void> {
		try {
			terminals.value = await api.get<TerminalView[]>("/terminals");
			error.value = null;
		} catch (err) {
			error.value = err;
		} finally {
			loaded.value = true;
		}
	}

	let stops: (() => void)[] = [];
	onMounted(() => {
		void load();
		stops = [
			// Presence changes transport, node and counts too: read the terminal again.
			onTerminal(() => void load()),
			onReconnected(() => void load())
		];
	});
	onUnmounted(() => stops.forEach(stop => stop()));
	return { terminals, error, loaded, load };
}
