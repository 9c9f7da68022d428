/** What the alarm page showed, newest first, the last 50, kept in localStorage. */
import { ref } from "vue";

const KEY = "tern.alarm.history";
const MAX = 50;

export interface HistoryItem {
	taskId: string;
	title: string;
	type: string;
	outcome: string;
	at: number;
}

function load(): HistoryItem[] {
	try {
		const items = JSON.parse(localStorage.getItem(KEY) ?? "[]") as unknown;
		return Array.isArray(items) ? (items as HistoryItem[]).slice(0, MAX) : [];
	} catch {
		return [];
	}
}

export function useHistory() {
	const history = ref<HistoryItem[]>(load());
	function record(item: HistoryItem): void {
		history.value = [item, ...history.value].slice(0, MAX);
		localStorage.setItem(KEY, JSON.stringify(history.value));
	}
	return { history, record };
}
