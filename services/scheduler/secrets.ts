/**
 * A job's task secrets: the template's `secrets` and the values at its `sensitive` paths are
 * sealed into `sealedSecrets` (the envelope of lib/task-secrets.ts) inside the job's stored task,
 * whose payload has "***" at those paths. Views show "***"; each fire opens them for its submit,
 * and the dispatcher seals them again into the task it makes. A PUT that sends a secret back as
 * "***" keeps the stored one (the client was never shown it).
 */
import type { TaskBody } from "../../lib/contracts.ts";
import type { Keyring } from "../../lib/keyring.ts";
import type { ResealTarget } from "../../lib/resealer.ts";
import { checkSecrets, openSecrets, REDACTED, redactedSecrets, resealEnvelope, sealSecrets } from "../../lib/task-secrets.ts";
import type { JobModel, JobRow } from "../../models/job.model.ts";
import { Op } from "sequelize";

/** A job's task as stored: its secrets sealed (an envelope object, see lib/task-secrets.ts). */
export type StoredTask = Omit<TaskBody, "secrets"> & { sealedSecrets?: object };

/** The task as the job row stores it; `base` is the stored task a PUT replaces. */
export function sealJobTask(task: TaskBody, keyring: Keyring, base?: StoredTask): StoredTask {
	checkSecrets(task, "task.");
	const kept = base?.sealedSecrets ? openSecrets(JSON.stringify(base.sealedSecrets), base.payload, keyring) : null;
	const secrets = Object.fromEntries(
		Object.entries(task.secrets ?? {}).map(([name, value]) => [
			name,
			value === REDACTED && kept?.secrets[name] !== undefined ? kept.secrets[name] : value
		])
	);
	const { secrets: _given, ...rest } = task;
	const sealed = sealSecrets({ ...rest, secrets, payload: keptPayload(task, kept?.payload) }, keyring);
	const stored: StoredTask = { ...rest, payload: sealed.payload };
	if (sealed.envelope) stored.sealedSecrets = JSON.parse(sealed.envelope) as object;
	return stored;
}

/** The payload with each sensitive value sent back as "***" replaced by the stored one. */
function keptPayload(task: TaskBody, stored: unknown): unknown {
	if (stored === undefined || !task.sensitive?.length) return task.payload;
	const payload: unknown = structuredClone(task.payload);
	for (const path of task.sensitive) {
		const keys = path.split(".");
		let here = payload as Record<string, unknown> | undefined;
		let there = stored as Record<string, unknown> | undefined;
		for (const key of keys.slice(0, -1)) {
			here = here?.[key] as Record<string, unknown> | undefined;
			there = there?.[key] as Record<string, unknown> | undefined;
		}
		const last = keys[keys.length - 1];
		if (here && there && here[last] === REDACTED && there[last] !== undefined) here[last] = there[last];
	}
	return payload;
}

/** The body a fire submits: the secrets opened (the dispatcher seals them again). */
export function openJobTask(task: StoredTask, keyring: Keyring): TaskBody {
	const { sealedSecrets, ...rest } = task;
	if (!sealedSecrets) return rest;
	const opened = openSecrets(JSON.stringify(sealedSecrets), rest.payload, keyring);
	const body: TaskBody = { ...rest, payload: opened.payload };
	if (Object.keys(opened.secrets).length > 0) body.secrets = opened.secrets;
	return body;
}

/** The task as views show it: `secrets: { NAME: "***" }`, the sensitive paths "***" in the payload. */
export function shownJobTask(task: StoredTask): TaskBody {
	const { sealedSecrets, ...rest } = task;
	return sealedSecrets ? { ...rest, ...redactedSecrets(JSON.stringify(sealedSecrets)) } : rest;
}

/** `jobs.task` for the re-sealing: the jobs whose sealed secrets are not on the active key. */
export function jobResealTarget(model: JobModel, keyring: Keyring): ResealTarget {
	return {
		name: "jobs.task",
		async page(after, limit, activeId) {
			// A key id is letters, digits and '-' (KID_PATTERN): nothing in it is a LIKE wildcard.
			const rows = (await model.findAll({
				where: {
					[Op.and]: [
						{ task: { [Op.like]: '%"sealedSecrets":%' } },
						{ task: { [Op.notLike]: `%enc:v2:${activeId}:%` } },
						...(after ? [{ id: { [Op.gt]: after } }] : [])
					]
				},
				attributes: ["id", "task"],
				order: [["id", "ASC"]],
				limit,
				raw: true
			})) as unknown as Pick<JobRow, "id" | "task">[];
			return rows.map(row => ({ cursor: row.id, value: row.task }));
		},
		reseal(value) {
			const task = JSON.parse(value) as StoredTask;
			const envelope = resealEnvelope(JSON.stringify(task.sealedSecrets), keyring);
			return JSON.stringify({ ...task, sealedSecrets: JSON.parse(envelope) as object });
		},
		async write(id, from, to) {
			const [changed] = await model.update({ task: to }, { where: { id, task: from } });
			return changed === 1;
		}
	};
}
