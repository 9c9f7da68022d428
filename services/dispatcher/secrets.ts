/**
 * The validator's rules for a task body's `secrets` and `sensitive` (see lib/task-secrets.ts for
 * what they mean and the checks beyond these: counts, total size, paths that name a value).
 */
import { SECRET_LIMITS, SECRET_NAME, SENSITIVE_PATH } from "../../lib/task-secrets.ts";

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
