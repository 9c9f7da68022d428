/** The re-sealing of `tasks.secrets` after the active data key changes (see lib/resealer.ts). */
import type { Keyring } from "../../lib/keyring.ts";
import { likeEscape, type ResealTarget } from "../../lib/resealer.ts";
import { currentEnvelopeMark, resealEnvelope } from "../../lib/task-secrets.ts";
import type { TaskStore } from "./store.ts";

/** `tasks.secrets` for the re-sealing (lib/resealer.ts): the tasks whose envelope is not on the active key. */
export function taskResealTarget(store: TaskStore, keyring: Keyring): ResealTarget {
	return {
		name: "tasks.secrets",
		async page(after, limit, activeId) {
			const rows = await store.sealedPage(after, limit, `%${likeEscape(currentEnvelopeMark(activeId))}%`);
			return rows.map(row => ({ cursor: row.id, value: row.secrets }));
		},
		reseal: value => resealEnvelope(value, keyring),
		write: (id, from, to) => store.resealSecrets(id, from, to)
	};
}
