/**
 * The validator's rules for a task body's `secrets` and `sensitive` (see lib/task-secrets.ts for
 * what they mean and the checks beyond these: counts, total size, paths that name a value), and
 * the re-sealing of `tasks.secrets` after the active data key changes.
 */
import type { Keyring } from "../../lib/keyring.ts";
import { likeEscape, type ResealTarget } from "../../lib/resealer.ts";
import { currentEnvelopeMark, resealEnvelope, SECRET_LIMITS, SECRET_NAME, SENSITIVE_PATH } from "../../lib/task-secrets.ts";
import type { TaskStore } from "./store.ts";

export const secretsRules = {
	secrets: {
		type: "record",
		optional: true,
		key: { type: "string", min: 1, max: 128, pattern: SECRET_NAME },
		value: { type: "string", max: SECRET_LIMITS.valueBytes }
	},
	sensitive: {
		type: "array",
		optional: true,
		max: SECRET_LIMITS.paths,
		unique: true,
		items: { type: "string", min: 1, max: SECRET_LIMITS.pathLength, pattern: SENSITIVE_PATH }
	}
};

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
